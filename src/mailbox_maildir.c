/* mailbox_maildir.c - (being written).  GPL-3.0-or-later. */
#include <config.h>

#include "mailbox.h"
