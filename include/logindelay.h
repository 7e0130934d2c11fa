/* logindelay.h - (being written).  GPL-3.0-or-later. */
#ifndef POP3D_LOGINDELAY_H
#define POP3D_LOGINDELAY_H
#endif
