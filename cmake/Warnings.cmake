# Strict warnings for all gizcloud code, as an INTERFACE target to link.
add_library(giz_warnings INTERFACE)
target_compile_options(giz_warnings INTERFACE
  -Wall -Wextra -Wconversion -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wcast-qual -Wimplicit-fallthrough -Wvla -Wpointer-arith -Wundef)
if(GIZ_WERROR)
  target_compile_options(giz_warnings INTERFACE -Werror)
endif()
