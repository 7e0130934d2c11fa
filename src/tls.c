/* tls.c - (being written).  GPL-3.0-or-later. */
#include <config.h>

#include "tls.h"
