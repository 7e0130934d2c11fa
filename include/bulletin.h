/* bulletin.h - (being written).  GPL-3.0-or-later. */
#ifndef POP3D_BULLETIN_H
#define POP3D_BULLETIN_H
#endif
