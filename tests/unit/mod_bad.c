/* mod_bad.c - modules the loader must refuse (test_module): built with -DBAD_ABI as
 * badabi.so, another ABI; with -DBAD_LAYOUT as badlayout.so, the right ABI but the
 * headers of another build.  GPL-3.0-or-later. */
#include <config.h>

#include <stddef.h>

#include "module.h"

POP3D_MODULE_EXPORT const struct pop3d_module pop3d_module = {
#ifdef BAD_ABI
  .abi = POP3D_MODULE_ABI + 1,
  .layout = MODULE_LAYOUT,
  .name = "badabi",
#else
  .abi = POP3D_MODULE_ABI,
  .layout = MODULE_LAYOUT + 1,
  .name = "badlayout",
#endif
};
