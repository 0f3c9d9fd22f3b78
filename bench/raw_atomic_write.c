/*-------------------------------------------------------------------------
 *
 * raw_atomic_write.c
 *	  The baseline for bench/atomic_writes.sh: a bare pwritev2() loop.
 *
 * Usage: raw_atomic_write FILE BATCH TOTAL_BLOCKS fsync|dsync aligned|unaligned
 *
 * Writes TOTAL_BLOCKS 8 kB blocks of FILE (opened with O_DIRECT) BATCH
 * blocks at a time at random positions, with RWF_DSYNC too in dsync mode and
 * one fdatasync() at the end in fsync mode.  Prints the seconds it took.
 * aligned: positions are BATCH-aligned and each batch is one
 * pwritev2(RWF_ATOMIC), the cheapest the kernel can be asked for.
 * unaligned: a batch is cut into atomic units by wtsmgr's own planner
 * (wtsmgr_split.h) and the units are written one pwritev2() after another.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040
#endif

#define BLCKSZ 8192

#include "../wtsmgr_split.h"

int
main(int argc, char **argv)
{
	int			fd;
	long		batch;
	long		total;
	int			dsync;
	int			aligned;
	const void *bufs[128];
	WtsmgrUnit	units[128];
	struct stat st;
	uint64_t	nblocks;
	uint64_t	x = 42;
	void	   *buf;
	struct iovec iov;
	struct timespec t0,
				t1;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s FILE BATCH TOTAL_BLOCKS fsync|dsync aligned|unaligned\n", argv[0]);
		return 2;
	}
	aligned = strcmp(argv[5], "aligned") == 0;
	batch = atol(argv[2]);
	total = atol(argv[3]);
	dsync = strcmp(argv[4], "dsync") == 0;
	fd = open(argv[1], O_RDWR | O_DIRECT);
	if (fd < 0 || fstat(fd, &st) != 0)
	{
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	nblocks = (uint64_t) st.st_size / BLCKSZ;
	if (batch < 1 || batch > 128 || nblocks < (uint64_t) batch ||
		posix_memalign(&buf, 4096, (size_t) batch * BLCKSZ) != 0)
	{
		fprintf(stderr, "bad batch or file too small\n");
		return 1;
	}
	memset(buf, 0, (size_t) batch * BLCKSZ);
	iov.iov_base = buf;
	iov.iov_len = (size_t) batch * BLCKSZ;
	for (long i = 0; i < batch; i++)
		bufs[i] = (char *) buf + i * BLCKSZ;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long done = 0; done < total; done += batch)
	{
		uint64_t	pos;

		/* xorshift64 */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (aligned)
		{
			pos = (x % (nblocks / batch)) * batch;
			if (pwritev2(fd, &iov, 1, (off_t) (pos * BLCKSZ),
						 RWF_ATOMIC | (dsync ? RWF_DSYNC : 0)) != (ssize_t) iov.iov_len)
			{
				fprintf(stderr, "pwritev2: %s\n", strerror(errno));
				return 1;
			}
			continue;
		}
		pos = x % (nblocks - batch + 1);
		for (uint32_t u = 0,
			 n = wtsmgr_plan_units(pos, batch, BLCKSZ, 4096, 2 * 1024 * 1024, 1,
								   4096, bufs, units); u < n; u++)
		{
			struct iovec uiov = {(char *) buf + units[u].first * BLCKSZ,
			(size_t) units[u].nblocks * BLCKSZ};

			if (pwritev2(fd, &uiov, 1, (off_t) ((pos + units[u].first) * BLCKSZ),
						 RWF_ATOMIC | (dsync ? RWF_DSYNC : 0)) != (ssize_t) uiov.iov_len)
			{
				fprintf(stderr, "pwritev2: %s\n", strerror(errno));
				return 1;
			}
		}
	}
	if (!dsync && fdatasync(fd) != 0)
	{
		fprintf(stderr, "fdatasync: %s\n", strerror(errno));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.6f\n", (double) (t1.tv_sec - t0.tv_sec) +
		   (t1.tv_nsec - t0.tv_nsec) / 1e9);
	close(fd);
	return 0;
}
