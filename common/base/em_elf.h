/* em_elf.h -- checks that a job library file is a whole ELF shared object before dlopen.
 *
 * glibc's loader trusts the file: a truncated .so makes it touch pages past the end of the
 * file and the process dies of SIGBUS. Checking the ELF header and that every loadable
 * segment lies inside the file turns such input into a clear error instead.
 */
#ifndef EM_ELF_H
#define EM_ELF_H

#include <stddef.h>

/* em_elf_check returns EMBER_OK or EMBER_ERR_LIBRARY with the reason in err. */
int em_elf_check(const void *bytes, size_t len, char *err, size_t errlen);

#endif
