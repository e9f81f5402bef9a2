# cmake -DIN=attach_gdb.py -DOUT=attach_gdb_py.h -P embed.cmake: the file
# as a C array, so that the command carries its gdb script with it.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
       "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${IN} by cli/embed.cmake. */\n"
     "static const unsigned char attach_gdb_py[] = {\n${bytes}};\n")
