# AddressSanitizer / UBSan for every target when asked (-DGIZ_ASAN=ON -DGIZ_UBSAN=ON).
set(GIZ_SAN_FLAGS "")
if(GIZ_ASAN)
  list(APPEND GIZ_SAN_FLAGS -fsanitize=address -fno-omit-frame-pointer)
endif()
if(GIZ_UBSAN)
  # float-cast-overflow is not part of GCC's -fsanitize=undefined: ask for it.
  list(APPEND GIZ_SAN_FLAGS -fsanitize=undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow)
endif()
if(GIZ_SAN_FLAGS)
  add_compile_options(${GIZ_SAN_FLAGS})
  add_link_options(${GIZ_SAN_FLAGS})
endif()
