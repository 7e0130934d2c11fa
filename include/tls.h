/* tls.h - (being written).  GPL-3.0-or-later. */
#ifndef POP3D_TLS_H
#define POP3D_TLS_H
#endif
