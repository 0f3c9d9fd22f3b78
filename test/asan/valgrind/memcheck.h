/*
 * test/asan/valgrind/memcheck.h -- PostgreSQL's Valgrind hooks, carried out
 * by AddressSanitizer instead.
 *
 * scripts/build-server.sh --flavor debug-asan builds with -DUSE_VALGRIND and
 * this directory first on the include path, so that <valgrind/memcheck.h>
 * in src/include/utils/memdebug.h is this file.  The memory contexts
 * (aset.c, generation.c, slab.c, bump.c, mcxt.c) and the buffer manager mark
 * what may not be touched with VALGRIND_MAKE_MEM_NOACCESS: the padding after
 * each palloc'd chunk, chunk headers, free space, unpinned buffers.  Plain
 * ASan sees none of that, since a context carves its chunks out of one
 * malloc'd block: reading 64 bytes from an 11-byte palloc'd string is a read
 * inside that block.  Here NOACCESS poisons the bytes in ASan's shadow, so
 * such a read is reported (use-after-poison).
 *
 * Only "may be accessed or not" is modelled; ASan has no notion of defined
 * contents, so MAKE_MEM_DEFINED and MAKE_MEM_UNDEFINED both unpoison and the
 * definedness checks do nothing.  VALGRIND_MEMPOOL_FREE does nothing (ASan
 * would need the chunk's size): freed chunks are not poisoned, but
 * CLOBBER_FREED_MEMORY (cassert) poisons them through wipe_mem anyway.
 * ASan poisons in 8-byte granules: a poisoned range whose end shares a
 * granule with bytes still accessible is poisoned short, never long, so
 * this can miss an access, not report one that Valgrind would not.
 * ASAN_OPTIONS=allow_user_poisoning=0 turns all of it off at run time.
 */
#ifndef WTSMGR_ASAN_VALGRIND_MEMCHECK_H
#define WTSMGR_ASAN_VALGRIND_MEMCHECK_H

#ifndef __SANITIZE_ADDRESS__
#error "test/asan/valgrind/memcheck.h is for builds with -fsanitize=address"
#endif

#include <sanitizer/asan_interface.h>

/*
 * They change the shadow of the range and never touch its bytes; saying so
 * keeps gcc from warning that the bytes passed may be uninitialized.
 */
extern void __asan_poison_memory_region(void const volatile *addr, size_t size)
			__attribute__((access(none, 1)));
extern void __asan_unpoison_memory_region(void const volatile *addr, size_t size)
			__attribute__((access(none, 1)));

/* PostgreSQL uses these as statements only, so they are void */
#define VALGRIND_MAKE_MEM_NOACCESS(addr, size) \
	__asan_poison_memory_region((addr), (size))
#define VALGRIND_MAKE_MEM_UNDEFINED(addr, size) \
	__asan_unpoison_memory_region((addr), (size))
#define VALGRIND_MAKE_MEM_DEFINED(addr, size) \
	__asan_unpoison_memory_region((addr), (size))
#define VALGRIND_CHECK_MEM_IS_DEFINED(addr, size) \
	((void) (addr), (void) (size))

#define VALGRIND_CREATE_MEMPOOL(pool, redzone, zeroed) ((void) (pool))
#define VALGRIND_DESTROY_MEMPOOL(pool) ((void) (pool))
#define VALGRIND_MEMPOOL_ALLOC(pool, addr, size) \
	((void) (pool), __asan_unpoison_memory_region((addr), (size)))
#define VALGRIND_MEMPOOL_FREE(pool, addr) ((void) (pool), (void) (addr))
#define VALGRIND_MEMPOOL_CHANGE(pool, oaddr, addr, size) \
	((void) (pool), (void) (oaddr), \
	 __asan_unpoison_memory_region((addr), (size)))

/* postgres.c counts Valgrind's errors per query; ASan aborts at the first */
#define VALGRIND_COUNT_ERRORS 0
#define VALGRIND_PRINTF(...) ((void) 0)
#define RUNNING_ON_VALGRIND 0

#endif							/* WTSMGR_ASAN_VALGRIND_MEMCHECK_H */
