/* acl.h - (being written).  GPL-3.0-or-later. */
#ifndef POP3D_ACL_H
#define POP3D_ACL_H
#endif
