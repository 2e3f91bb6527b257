# Writes OUT, a C file holding the bytes of FILE as `const char NAME[]`
# (NUL-terminated) and `const size_t NAME_len` (without the NUL).
file(READ ${FILE} data HEX)
string(LENGTH "${data}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," data "${data}")
set(body "/* Generated from ${FILE} by cmake/EmbedFile.cmake; do not edit. */\n#include <stddef.h>\n")
string(APPEND body "extern const char ${NAME}[];\nextern const size_t ${NAME}_len;\n")
string(APPEND body "const char ${NAME}[] = {${data}0x00};\nconst size_t ${NAME}_len = ${len};\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
