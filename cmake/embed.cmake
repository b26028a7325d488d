# embed.cmake -- turns a text file into a C source defining `const char NAME[]`.
# Usage: cmake -DINPUT=file -DOUTPUT=file.c -DNAME=symbol -P embed.cmake
file(READ ${INPUT} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUTPUT} "/* generated from ${INPUT} by cmake/embed.cmake */\nconst char ${NAME}[] = {${bytes}0x00};\n")
