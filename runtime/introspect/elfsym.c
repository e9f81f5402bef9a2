/*
 * elfsym — the symbol-table index (see elfsym.h).
 *
 * libdwfl's dwfl_module_addrinfo() scans the whole symbol table on every
 * call (~115 µs per address in libc's 10k-symbol .symtab); this index is
 * built once per module, on its first lookup.
 *
 * Invariant: fns is sorted by address, holds only symbols of type FUNC or
 * GNU_IFUNC defined in an allocated section, and keeps one name per
 * address: the best-ranked alias.
 */
#include "elfsym.h"

#include <gelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct elfsym_fn {
  uint64_t addr;       /* as loaded: value + bias */
  const char *name;    /* in the ELF image's string table */
  uint32_t size_bytes; /* 0 = unknown */
  uint32_t rank;       /* STB_GLOBAL 0, STB_WEAK 1, else 2 */
};

/* How far back a lookup looks for an enclosing symbol when the nearest
 * one ends below pc (a symbol nested in a bigger one). */
#define NESTED_LOOKBACK 8

/* The first section of `type` in `elf` (which may be NULL); NULL if none. */
static Elf_Scn *section_of_type(Elf *elf, GElf_Word type, GElf_Shdr *shdr) {
  for (Elf_Scn *scn = NULL; elf && (scn = elf_nextscn(elf, scn)) != NULL;)
    if (gelf_getshdr(scn, shdr) != NULL && shdr->sh_type == type)
      return scn;
  return NULL;
}

/* The SHT_SYMTAB_SHNDX section that extends table `symtab`, if any. */
static Elf_Data *extended_indexes(Elf *elf, Elf_Scn *symtab) {
  GElf_Shdr shdr;
  size_t at = elf_ndxscn(symtab);
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;)
    if (gelf_getshdr(scn, &shdr) != NULL && shdr.sh_type == SHT_SYMTAB_SHNDX &&
        shdr.sh_link == at)
      return elf_getdata(scn, NULL);
  return NULL;
}

/* Whether section `shndx` of `elf` is loaded at run time (SHF_ALLOC; a
 * separate debug file keeps the flag on the sections it left out). */
static bool allocated(Elf *elf, GElf_Word shndx) {
  GElf_Shdr shdr;
  return gelf_getshdr(elf_getscn(elf, shndx), &shdr) != NULL &&
         (shdr.sh_flags & SHF_ALLOC);
}

static bool is_function(Elf *elf, const GElf_Sym *sym, GElf_Word shndx,
                        const char *name) {
  int type = GELF_ST_TYPE(sym->st_info);
  bool in_section =
      sym->st_shndx == SHN_XINDEX ||
      (sym->st_shndx != SHN_UNDEF && sym->st_shndx < SHN_LORESERVE);
  return name != NULL && name[0] != '\0' && in_section &&
         (type == STT_FUNC || type == STT_GNU_IFUNC) && allocated(elf, shndx);
}

static uint32_t binding_rank(const GElf_Sym *sym) {
  int bind = GELF_ST_BIND(sym->st_info);
  return bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
}

/* Aliases share an address (qsort and __GI_qsort, malloc and __libc_malloc,
 * signal and ssignal); the first in this order names them all: global over
 * weak over local, then the shortest name, then the alphabetical first. */
static int by_addr_then_rank(const void *a, const void *b) {
  const struct elfsym_fn *x = a, *y = b;
  if (x->addr != y->addr)
    return x->addr < y->addr ? -1 : 1;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  size_t xlen = strlen(x->name), ylen = strlen(y->name);
  return xlen != ylen ? (xlen < ylen ? -1 : 1) : strcmp(x->name, y->name);
}

/* Keeps the best-ranked name per address (the first after sorting). */
static size_t drop_aliases(struct elfsym_fn *v, size_t n) {
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (kept == 0 || v[kept - 1].addr != v[i].addr)
      v[kept++] = v[i];
  return kept;
}

/* Appends every function symbol of table `scn` to ix->fns (room for all
 * of them is there). */
static void add_table(elfsym_t *ix, Elf *elf, Elf_Scn *scn,
                      const GElf_Shdr *shdr, uint64_t bias) {
  Elf_Data *data = elf_getdata(scn, NULL);
  Elf_Data *xndx = extended_indexes(elf, scn);
  size_t n = shdr->sh_entsize ? shdr->sh_size / shdr->sh_entsize : 0;
  for (size_t i = 0; data != NULL && i < n; i++) {
    GElf_Sym sym;
    GElf_Word shndx;
    if (gelf_getsymshndx(data, xndx, (int)i, &sym, &shndx) == NULL)
      continue;
    if (sym.st_shndx != SHN_XINDEX)
      shndx = sym.st_shndx;
    const char *name = elf_strptr(elf, shdr->sh_link, sym.st_name);
    if (is_function(elf, &sym, shndx, name))
      ix->fns[ix->nfns++] = (struct elfsym_fn){
          sym.st_value + bias, name,
          sym.st_size > UINT32_MAX ? 0 : (uint32_t)sym.st_size,
          binding_rank(&sym)};
  }
}

void elfsym_build(elfsym_t *ix, Elf *main, Elf *debug, uint64_t bias) {
  *ix = (elfsym_t){0};
  GElf_Shdr shdr;
  Elf *elf = main;
  Elf_Scn *scn = section_of_type(main, SHT_SYMTAB, &shdr);
  if (scn == NULL && (scn = section_of_type(debug, SHT_SYMTAB, &shdr)))
    elf = debug;
  if (scn == NULL)
    scn = section_of_type(main, SHT_DYNSYM, &shdr);
  size_t n = scn && shdr.sh_entsize ? shdr.sh_size / shdr.sh_entsize : 0;
  if (n == 0 || n > INT32_MAX ||
      (ix->fns = malloc(n * sizeof *ix->fns)) == NULL)
    return;
  add_table(ix, elf, scn, &shdr, bias);
  qsort(ix->fns, ix->nfns, sizeof *ix->fns, by_addr_then_rank);
  ix->nfns = drop_aliases(ix->fns, ix->nfns);
  if (ix->nfns == 0) {
    elfsym_free(ix);
    return;
  }
  struct elfsym_fn *fit = realloc(ix->fns, ix->nfns * sizeof *ix->fns);
  ix->fns = fit ? fit : ix->fns;
}

/* Index of the first symbol above `pc`. */
static size_t first_above(const struct elfsym_fn *v, size_t n, uint64_t pc) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid].addr <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

const char *elfsym_function_at(const elfsym_t *ix, uint64_t pc) {
  size_t above = first_above(ix->fns, ix->nfns, pc);
  for (size_t i = above; i > 0 && above - i < NESTED_LOOKBACK; i--) {
    const struct elfsym_fn *f = &ix->fns[i - 1];
    if (f->size_bytes == 0 ? i == above : pc - f->addr < f->size_bytes)
      return f->name;
  }
  return NULL;
}

size_t elfsym_bytes(const elfsym_t *ix) { return ix->nfns * sizeof *ix->fns; }

void elfsym_free(elfsym_t *ix) {
  free(ix->fns);
  *ix = (elfsym_t){0};
}
