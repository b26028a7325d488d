/* em_elf.c -- structural check of an ELF shared object held in memory (see em_elf.h). */
#include "em_elf.h"

#include <elf.h>
#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return EMBER_ERR_LIBRARY;                                                                  \
    } while (0)

int em_elf_check(const void *bytes, size_t len, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    if (len < sizeof eh) FAIL("file of %zu bytes is too short to be a shared object", len);
    memcpy(&eh, bytes, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) FAIL("not an ELF file");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        FAIL("not a 64-bit little-endian ELF file");
    if (eh.e_type != ET_DYN) FAIL("not a shared object (ELF type %u)", eh.e_type);
#if defined(__x86_64__)
    if (eh.e_machine != EM_X86_64) FAIL("built for another machine (ELF machine %u)", eh.e_machine);
#elif defined(__aarch64__)
    if (eh.e_machine != EM_AARCH64)
        FAIL("built for another machine (ELF machine %u)", eh.e_machine);
#endif
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > len ||
        (len - eh.e_phoff) / sizeof(Elf64_Phdr) < eh.e_phnum)
        FAIL("truncated or damaged (program headers outside the file)");
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, (const char *)bytes + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD && ph.p_type != PT_DYNAMIC) continue;
        if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
            FAIL("truncated or damaged (segment %u ends at byte %llu of %zu)", i,
                 (unsigned long long)(ph.p_offset + ph.p_filesz), len);
    }
    if (eh.e_shoff > len ||
        (eh.e_shnum && (len - eh.e_shoff) / (eh.e_shentsize ? eh.e_shentsize : 1) < eh.e_shnum))
        FAIL("truncated or damaged (section headers outside the file)");
    return EMBER_OK;
}
