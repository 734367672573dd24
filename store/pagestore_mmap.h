/*
 * pagestore_mmap.h - read-only shared mappings of the page store's data files, reference counted
 * so page handles can point into them (zero-copy gets), and a SIGBUS guard for the pass that
 * first touches mapped bytes (a file cut behind the store's back or a disk I/O error raises
 * SIGBUS on access; inside the guard that becomes an error code). Not for use outside store/.
 */
#ifndef SHOAL_PAGESTORE_MMAP_H
#define SHOAL_PAGESTORE_MMAP_H

#include <stddef.h>
#include <stdint.h>

/* What pagestore_mmap_guarded returns when the guarded call touched a byte that raised SIGBUS.
 * Positive, so it never clashes with 0 or a negative SHOAL_E* code. */
#define PAGESTORE_MMAP_FAULT 1

/* One mapping of a data file. Reference counted and thread safe: the creator holds one
 * reference, each page handle pointing into it another; the last unref unmaps it. The mapping
 * stays valid after the file is closed or unlinked (the kernel keeps the inode). */
typedef struct pagestore_mmap pagestore_mmap_t;

/* Maps `length` bytes (> 0) of `fd` from offset 0, PROT_READ and MAP_SHARED, and installs the
 * process's SIGBUS handler (once per process; see pagestore_mmap_guarded). `length` may exceed
 * the file's size: bytes past the end may be read once the file has grown over them (the
 * mapping is coherent with pwrite through the page cache); touching bytes past the current end
 * raises SIGBUS. Returns the mapping with one reference for the caller, or NULL with errno set
 * (ENOMEM: out of address space or memory). Borrows fd (the mapping does not keep it open). */
pagestore_mmap_t *pagestore_mmap_new(int fd, size_t length);

/* The first mapped byte (page-aligned). Borrowed while a reference is held. */
const uint8_t *pagestore_mmap_base(const pagestore_mmap_t *self);

/* The mapped length in bytes. */
size_t pagestore_mmap_length(const pagestore_mmap_t *self);

/* Takes one more reference. Thread safe, lock free. */
void pagestore_mmap_ref(pagestore_mmap_t *self);

/* Drops the reference *self_p holds and sets it to NULL; unmaps and frees on the last one.
 * Safe on NULL. Thread safe, lock free (one atomic decrement, plus munmap on the last). */
void pagestore_mmap_unref(pagestore_mmap_t **self_p);

/* Hands the mapping a read-write descriptor of its (unlinked, dropped) file: on the last
 * unref, after the munmap, the file is cut to 0 bytes (ftruncate) and `fd` closed, so its disk
 * space comes back even while other processes hold descriptors of it. Takes ownership of fd.
 * Call at most once per mapping, by the holder of a reference. */
void pagestore_mmap_cut_on_unmap(pagestore_mmap_t *self, int fd);

/* Runs fn(arg) with [from, from + length) guarded: if a SIGBUS hits an address in that range on
 * this thread while fn runs, fn is abandoned (siglongjmp out of the handler; fn must hold no
 * lock and own no resource while it touches the range) and PAGESTORE_MMAP_FAULT is returned.
 * Otherwise returns fn's result. A SIGBUS outside a guarded range, or on another thread, goes
 * to the disposition that was in place before the handler was installed (a previous handler is
 * called; the default kills the process with a core dump), so real bugs still crash. The
 * handler is installed by pagestore_mmap_new (and by this call, if not yet); a program that
 * installs its own SIGBUS handler later replaces it, and the guard no longer works. Cost: one
 * sigsetjmp without saving the signal mask (no system call). */
int pagestore_mmap_guarded(const void *from, size_t length, int (*fn)(void *arg), void *arg);

#endif
