/*-------------------------------------------------------------------------
 *
 * tornlog.h
 *	  The write log shared by tornsim (the FUSE server that records what
 *	  its "device" receives) and tornreplay (which builds crash images
 *	  from it).
 *
 * A log is a sequence of records, each a fixed header followed by len
 * bytes of payload for writes and marks.  Records are in the order in
 * which the server handled the requests; the server is single-threaded,
 * so that is also the order in which it replied to them, and a write that
 * completed before the kernel sent a flush is always logged before that
 * flush.  All fields are little-endian, as on every machine this runs on.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TORNLOG_H
#define TORNLOG_H

#include <stdint.h>

#define TORNLOG_MAGIC	0x474c5354	/* "TSLG" */

/* record types */
#define TORNLOG_WRITE	'W'		/* offset, len, then len bytes of data */
#define TORNLOG_ZERO	'Z'		/* offset, len: range zeroed (fallocate) */
#define TORNLOG_FSYNC	'F'		/* a cache flush: offset is the datasync flag */
#define TORNLOG_CLOSE	'C'		/* FUSE flush at close(): no barrier */
#define TORNLOG_MARK	'M'		/* len bytes of label written to /mark */

typedef struct TornLogRecord
{
	uint32_t	magic;
	uint8_t		type;
	uint8_t		pad[3];
	uint64_t	seq;			/* 0, 1, 2 ... */
	uint64_t	offset;
	uint64_t	len;
	uint64_t	time_ns;		/* CLOCK_MONOTONIC when handled */
} TornLogRecord;

#endif							/* TORNLOG_H */
