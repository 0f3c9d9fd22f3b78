/*-------------------------------------------------------------------------
 *
 * tornsim.c
 *	  A FUSE server that serves one image file as MOUNTPOINT/disk and logs,
 *	  in order, every write (offset, length, data) and every flush that
 *	  reaches it, so that a loop device over that file behaves as a disk
 *	  whose volatile write cache a crash can lose or tear.
 *
 * Usage: tornsim IMAGE LOG MOUNTPOINT
 *
 * IMAGE holds the current contents of the "device" and is updated by every
 * write, so reads see what was written; LOG receives the records of
 * tornlog.h.  tornreplay builds crash images from the log.  Writing a line
 * to MOUNTPOINT/mark logs a mark record carrying it, in order with the
 * device's writes: the crash test marks where its workload starts.
 *
 * What the log must reflect is what the device received and when flushes
 * arrived, so:
 *
 * - The server is single-threaded.  Each request is logged when it is
 *   handled and answered after that, so a write that the kernel saw
 *   complete before it issued a flush is in the log before the flush.
 *
 * - The file is served with direct_io: the FUSE client keeps no page cache
 *   of its own that could reorder or merge writes, or hide a flush.
 *
 * - max_write is 1 MB, the most the FUSE client sends in one request, so
 *   that a loop device request is split as little as possible.  A split
 *   one shows as several log records; the replayer tears each on its own,
 *   which is no less than tearing the request it came from.
 *
 * - A loop device's REQ_OP_FLUSH (a filesystem's cache flush, and the
 *   flush that emulates FUA, which loop devices do not have) is an fsync
 *   of the backing file, which reaches here as FUSE_FSYNC: that is the
 *   barrier.  FUSE_FLUSH, sent at every close(), is logged but is no
 *   barrier.  Discards and zeroing (fallocate) are logged as zeroed
 *   ranges.
 *
 * The server never fsyncs IMAGE or LOG: the machine running it does not
 * crash, the simulated device does, and the log says what it kept.
 *
 *-------------------------------------------------------------------------
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tornlog.h"

#define DISK_PATH	"/disk"
#define MARK_PATH	"/mark"

static int	image_fd = -1;
static off_t image_size;
static FILE *log_file;
static uint64_t log_seq;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Append one record.  A failure to log makes the request fail too: a
 * write that the log does not have must not look as if it had reached the
 * device.
 */
static int
log_record(uint8_t type, uint64_t offset, uint64_t len, const void *payload)
{
	TornLogRecord rec;

	memset(&rec, 0, sizeof(rec));
	rec.magic = TORNLOG_MAGIC;
	rec.type = type;
	rec.seq = log_seq;
	rec.offset = offset;
	rec.len = len;
	rec.time_ns = now_ns();
	if (fwrite(&rec, sizeof(rec), 1, log_file) != 1)
		return -EIO;
	if (payload != NULL && len > 0 &&
		fwrite(payload, 1, len, log_file) != len)
		return -EIO;
	log_seq++;
	return 0;
}

static void *
tornsim_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* no page cache in the FUSE client, and no cached attributes */
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	conn->max_write = 1024 * 1024;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	return NULL;
}

static void
tornsim_destroy(void *private_data)
{
	if (fflush(log_file) != 0)
		fprintf(stderr, "tornsim: could not flush the log: %m\n");
}

static int
tornsim_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (strcmp(path, "/") == 0)
	{
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	}
	else if (strcmp(path, DISK_PATH) == 0)
	{
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = image_size;
		st->st_blocks = image_size / 512;
		st->st_blksize = 4096;
	}
	else if (strcmp(path, MARK_PATH) == 0)
	{
		st->st_mode = S_IFREG | 0200;
		st->st_nlink = 1;
	}
	else
		return -ENOENT;
	return 0;
}

static int
tornsim_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
				off_t offset, struct fuse_file_info *fi,
				enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	filler(buf, DISK_PATH + 1, NULL, 0, 0);
	filler(buf, MARK_PATH + 1, NULL, 0, 0);
	return 0;
}

static int
tornsim_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, DISK_PATH) != 0 && strcmp(path, MARK_PATH) != 0)
		return -ENOENT;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

/* O_TRUNC of the mark file (echo > mark) arrives as a truncate: accept it */
static int
tornsim_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (strcmp(path, MARK_PATH) == 0)
		return 0;
	if (strcmp(path, DISK_PATH) == 0)
		return size == image_size ? 0 : -EPERM;
	return -ENOENT;
}

static int
tornsim_read(const char *path, char *buf, size_t size, off_t offset,
			 struct fuse_file_info *fi)
{
	ssize_t		n;

	if (strcmp(path, DISK_PATH) != 0)
		return -EBADF;
	n = pread(image_fd, buf, size, offset);
	return n < 0 ? -errno : (int) n;
}

static int
tornsim_write(const char *path, const char *buf, size_t size, off_t offset,
			  struct fuse_file_info *fi)
{
	ssize_t		n;
	int			rc;

	if (strcmp(path, MARK_PATH) == 0)
	{
		rc = log_record(TORNLOG_MARK, 0, size, buf);
		if (rc == 0 && fflush(log_file) != 0)
			rc = -EIO;
		return rc < 0 ? rc : (int) size;
	}
	if (strcmp(path, DISK_PATH) != 0)
		return -EBADF;
	if (offset < 0 || offset + (off_t) size > image_size)
		return -ENOSPC;
	/* log first: the log must never miss a write that the image has */
	rc = log_record(TORNLOG_WRITE, offset, size, buf);
	if (rc < 0)
		return rc;
	n = pwrite(image_fd, buf, size, offset);
	if (n < 0)
		return -errno;
	if ((size_t) n != size)
		return -EIO;
	return (int) n;
}

static int
tornsim_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int			rc;

	if (strcmp(path, DISK_PATH) != 0)
		return 0;
	rc = log_record(TORNLOG_FSYNC, datasync, 0, NULL);
	/* let a reader of the log see everything up to the last barrier */
	if (rc == 0 && fflush(log_file) != 0)
		rc = -EIO;
	return rc;
}

static int
tornsim_flush(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, DISK_PATH) != 0)
		return 0;
	return log_record(TORNLOG_CLOSE, 0, 0, NULL);
}

/*
 * Discard (punch hole) and write-zeroes requests of the loop device.  The
 * range reads back as zeros afterwards, so it is logged as a zeroed range
 * that a crash may lose like a write.  Plain preallocation changes no
 * data and is not logged.
 */
static int
tornsim_fallocate(const char *path, int mode, off_t offset, off_t len,
				  struct fuse_file_info *fi)
{
	int			rc;

	if (strcmp(path, DISK_PATH) != 0)
		return -EOPNOTSUPP;
	if (offset < 0 || offset + len > image_size)
		return -EINVAL;
	if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) == 0)
		return 0;
	rc = log_record(TORNLOG_ZERO, offset, len, NULL);
	if (rc < 0)
		return rc;
	if (fallocate(image_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  offset, len) != 0)
		return -errno;
	return 0;
}

static const struct fuse_operations tornsim_ops = {
	.init = tornsim_init,
	.destroy = tornsim_destroy,
	.getattr = tornsim_getattr,
	.readdir = tornsim_readdir,
	.open = tornsim_open,
	.truncate = tornsim_truncate,
	.read = tornsim_read,
	.write = tornsim_write,
	.fsync = tornsim_fsync,
	.flush = tornsim_flush,
	.fallocate = tornsim_fallocate,
};

int
main(int argc, char **argv)
{
	struct stat st;
	static char log_buffer[8 * 1024 * 1024];
	char	   *fuse_argv[] = {argv[0], "-f", "-s", "-o", "fsname=tornsim",
	argc == 4 ? argv[3] : NULL, NULL};

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s IMAGE LOG MOUNTPOINT\n", argv[0]);
		return 2;
	}
	image_fd = open(argv[1], O_RDWR);
	if (image_fd < 0 || fstat(image_fd, &st) != 0)
	{
		fprintf(stderr, "tornsim: could not open image \"%s\": %m\n", argv[1]);
		return 1;
	}
	image_size = st.st_size;
	log_file = fopen(argv[2], "wx");
	if (log_file == NULL)
	{
		fprintf(stderr, "tornsim: could not create log \"%s\": %m\n"
				"tornsim: hint: the log must be new; remove the old one first\n",
				argv[2]);
		return 1;
	}
	setvbuf(log_file, log_buffer, _IOFBF, sizeof(log_buffer));
	return fuse_main(6, fuse_argv, &tornsim_ops, NULL);
}
