/*-------------------------------------------------------------------------
 *
 * tornreplay.c
 *	  Builds crash images from a tornsim log: what a disk with a volatile
 *	  write cache may hold after losing power.
 *
 * Usage:
 *	tornreplay stats LOG [--sector N]
 *	tornreplay plan LOG --mark LABEL --states N --seed S [--areas FILE --target NAME]
 *	tornreplay build LOG --flush F --crash C --seed S --sector N --size BYTES
 *				   [--prefix IMAGE] [--no-tear] [--areas FILE] --out IMAGE
 *	tornreplay areas LOG --mark LABEL --areas FILE --copies NAME
 *
 * A crash state is (F, C, S): F is the sequence number of a flush record,
 * C >= F that of the last record the device received before power was
 * lost, and S the seed of the choices made for the writes between them.
 * Every write up to F is applied: the flush made it durable.  Each write
 * after F, up to and including C, is applied whole, dropped, or torn (one
 * chance in three each): torn, each of its sectors (--sector bytes, the
 * loop device's logical block size) is applied or not at random, and at
 * least one is and one is not.  Writes after C never reached the device.
 * Zeroed ranges (discards) are treated as writes of zeros.  With
 * --no-tear, a write that would have been torn is applied whole or dropped
 * instead (the same state, on a disk that loses writes but never tears
 * them): the control that shows what tearing alone does.
 *
 * plan draws N states from the part of the log after the first mark record
 * whose label is LABEL, with the seed S it prints: a state is aimed at a
 * write carrying a PostgreSQL relation page (found by its page header,
 * below), chosen uniformly among such writes; F is the last flush before
 * that write, and C is drawn uniformly from that write to the record just
 * before the next flush.  A crash while no relation page is in flight
 * cannot tear one, so the states are spent where a tear can happen.  With
 * --areas and --target NAME, every other state is aimed at a write carrying
 * a relation page in area NAME (see below) instead: the crash test aims
 * half of them at a doublewrite area's in-place writes, which are only
 * half of the writes of relation pages, so that a run of a few dozen
 * states is all but sure to tear some.  It prints one line per state,
 * ordered by F: "state K flush F crash C seed SK".
 *
 * build writes that state's image to --out.  With --prefix, the image of
 * every write up to F is kept in that file between calls (with a ".pos"
 * file saying how far it got), so that states built in order of F cost one
 * pass over the log in all, plus a copy each.  It prints one line:
 *
 *	tail W writes: A applied, D dropped, T torn; relation pages: P in flight, X torn (in Y writes)
 *
 * A relation page is torn when its image holds some of the write's sectors
 * and not others, and so differs both from what it held before the write
 * and from what was written.  With --areas, the line ends with
 * "; torn by area: NAME N, ..., none N": the torn pages counted by the
 * area their first byte lies in.
 *
 * An areas file names ranges of the device, one a line: "NAME START
 * LENGTH", in bytes ('#' starts a comment); ranges must not overlap.  The
 * crash test names the extents of a doublewrite area's file and those of
 * the relation files, as the filesystem mapped them.  areas counts the
 * relation pages written after the mark by the area they land in:
 *
 *	area NAME: P relation pages in W writes	  (one line per area, and "none")
 *	outside NAME: P relation pages, D after a durable copy in it, U without
 *
 * where NAME is --copies: a page written outside that area has a durable
 * copy when the same 8 kB were written inside it earlier and a flush came
 * between the two writes, as a doublewrite protocol requires.
 *
 * A relation page is recognised, at any 4 kB-aligned position of the
 * device, by the checks PageIsVerified() makes of a page header (PG 18,
 * 8 kB blocks): pd_pagesize_version is 8192 | 4, no invalid flag bits,
 * and 24 <= pd_lower <= pd_upper <= pd_special <= 8192, pd_special
 * aligned to 8.  WAL pages (xlp_magic at offset 0, and a remaining length
 * where pd_pagesize_version would be) do not pass.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tornlog.h"

#define PAGE_SIZE_PG	8192
#define PAGE_SCAN_STEP	4096

typedef struct LogReader
{
	FILE	   *f;
	const char *path;
	uint64_t	pos;			/* byte offset of the next record */
	TornLogRecord rec;
	char	   *data;			/* payload of the current record */
	size_t		data_cap;
} LogReader;

typedef struct TailCounts
{
	uint64_t	writes;
	uint64_t	applied;
	uint64_t	dropped;
	uint64_t	torn;
	uint64_t	pages;
	uint64_t	torn_pages;
	uint64_t	torn_page_writes;
} TailCounts;

static void
fail(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "tornreplay: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* splitmix64: small, fast, and the same on every machine */
static uint64_t
rng_next(uint64_t *state)
{
	uint64_t	z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
rng_below(uint64_t *state, uint64_t n)
{
	return n == 0 ? 0 : rng_next(state) % n;
}

static void
log_open(LogReader *r, const char *path, uint64_t pos)
{
	memset(r, 0, sizeof(*r));
	r->path = path;
	r->f = fopen(path, "r");
	if (r->f == NULL)
		fail("could not open log \"%s\": %s", path, strerror(errno));
	if (fseeko(r->f, (off_t) pos, SEEK_SET) != 0)
		fail("could not seek in log \"%s\": %s", path, strerror(errno));
	r->pos = pos;
}

/*
 * Read the next record, and its payload if want_data (otherwise skip it).
 * Returns false at the end of the log; a record cut short at the end (the
 * server was killed while writing it) counts as the end.
 */
static bool
log_next(LogReader *r, bool want_data)
{
	if (fread(&r->rec, sizeof(r->rec), 1, r->f) != 1)
		return false;
	if (r->rec.magic != TORNLOG_MAGIC)
		fail("log \"%s\" is damaged at byte %" PRIu64, r->path, r->pos);
	if (r->rec.type == TORNLOG_WRITE || r->rec.type == TORNLOG_MARK)
	{
		if (want_data)
		{
			if (r->rec.len > r->data_cap)
			{
				r->data_cap = r->rec.len;
				r->data = realloc(r->data, r->data_cap);
				if (r->data == NULL)
					fail("out of memory");
			}
			if (fread(r->data, 1, r->rec.len, r->f) != r->rec.len)
				return false;
		}
		else if (fseeko(r->f, (off_t) r->rec.len, SEEK_CUR) != 0)
			return false;
		r->pos += r->rec.len;
	}
	r->pos += sizeof(r->rec);
	return true;
}

/*
 * Is the record just read (with its payload) the mark "mark": a mark record
 * whose text is mark, alone or as its first line?
 */
static bool
is_mark(const LogReader *r, const char *mark)
{
	size_t		l = strlen(mark);

	return r->rec.type == TORNLOG_MARK && r->rec.len >= l &&
		memcmp(r->data, mark, l) == 0 &&
		(r->rec.len == l || r->data[l] == '\n');
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

/* the header checks of PageIsVerified(), for an 8 kB page of PG 18 */
static bool
is_relation_page(const unsigned char *p)
{
	uint16_t	flags = get16(p + 10);
	uint16_t	lower = get16(p + 12);
	uint16_t	upper = get16(p + 14);
	uint16_t	special = get16(p + 16);
	uint16_t	version = get16(p + 18);

	return version == (PAGE_SIZE_PG | 4) &&
		(flags & ~0x0007) == 0 &&
		lower >= 24 && lower <= upper && upper <= special &&
		special <= PAGE_SIZE_PG && special % 8 == 0;
}

/*
 * Offsets (within the write) of the relation pages a write carries whole:
 * calls cb for each.  Pages start at 4 kB-aligned device offsets (XFS
 * blocks), not necessarily 8 kB-aligned ones.
 */
static int
count_pages(uint64_t offset, const unsigned char *data, uint64_t len,
			void (*cb) (uint64_t at, void *arg), void *arg)
{
	uint64_t	at = (PAGE_SCAN_STEP - offset % PAGE_SCAN_STEP) % PAGE_SCAN_STEP;
	int			n = 0;

	while (at + PAGE_SIZE_PG <= len)
	{
		if (is_relation_page(data + at))
		{
			n++;
			if (cb)
				cb(at, arg);
			at += PAGE_SIZE_PG;
		}
		else
			at += PAGE_SCAN_STEP;
	}
	return n;
}

static void
pwrite_all(int fd, const void *buf, size_t len, uint64_t offset, const char *what)
{
	const char *p = buf;

	while (len > 0)
	{
		ssize_t		n = pwrite(fd, p, len, (off_t) offset);

		if (n <= 0)
			fail("could not write %s: %s", what, strerror(errno));
		p += n;
		len -= n;
		offset += n;
	}
}

static void
pread_all(int fd, void *buf, size_t len, uint64_t offset, const char *what)
{
	char	   *p = buf;

	while (len > 0)
	{
		ssize_t		n = pread(fd, p, len, (off_t) offset);

		if (n < 0)
			fail("could not read %s: %s", what, strerror(errno));
		if (n == 0)
		{
			memset(p, 0, len);	/* past the end: a sparse image reads zeros */
			return;
		}
		p += n;
		len -= n;
		offset += n;
	}
}

/* ---- areas ---- */

#define MAX_AREA_NAMES	8
#define AREA_NONE		(-1)

typedef struct AreaRange
{
	uint64_t	start;
	uint64_t	end;			/* exclusive */
	int			name;
} AreaRange;

typedef struct Areas
{
	char	   *names[MAX_AREA_NAMES];
	int			nnames;
	AreaRange  *ranges;			/* sorted by start */
	size_t		n;
} Areas;

static int
cmp_range(const void *a, const void *b)
{
	const AreaRange *x = a,
			   *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void
areas_load(Areas *a, const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		line[1024];
	size_t		cap = 0;
	int			lineno = 0;

	memset(a, 0, sizeof(*a));
	if (f == NULL)
		fail("could not open areas file \"%s\": %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char		name[256];
		uint64_t	start,
					len;
		int			k;
		char	   *hash = strchr(line, '#');

		lineno++;
		if (hash)
			*hash = '\0';
		if (strspn(line, " \t\r\n") == strlen(line))
			continue;
		if (sscanf(line, "%255s %" SCNu64 " %" SCNu64, name, &start, &len) != 3 ||
			len == 0)
			fail("areas file \"%s\", line %d: expected NAME START LENGTH", path, lineno);
		for (k = 0; k < a->nnames; k++)
			if (strcmp(a->names[k], name) == 0)
				break;
		if (k == a->nnames)
		{
			if (k == MAX_AREA_NAMES)
				fail("areas file \"%s\": more than %d names", path, MAX_AREA_NAMES);
			a->names[a->nnames++] = strdup(name);
		}
		if (a->n == cap)
		{
			cap = cap ? cap * 2 : 256;
			a->ranges = realloc(a->ranges, cap * sizeof(AreaRange));
			if (a->ranges == NULL)
				fail("out of memory");
		}
		a->ranges[a->n].start = start;
		a->ranges[a->n].end = start + len;
		a->ranges[a->n].name = k;
		a->n++;
	}
	fclose(f);
	qsort(a->ranges, a->n, sizeof(AreaRange), cmp_range);
	for (size_t i = 1; i < a->n; i++)
		if (a->ranges[i].start < a->ranges[i - 1].end)
			fail("areas file \"%s\": ranges at %" PRIu64 " and %" PRIu64 " overlap",
				 path, a->ranges[i - 1].start, a->ranges[i].start);
}

/* the area a device offset lies in, or AREA_NONE */
static int
area_of(const Areas *a, uint64_t offset)
{
	long		lo = 0,
				hi = (long) a->n - 1;

	while (lo <= hi)
	{
		long		mid = (lo + hi) / 2;

		if (a->ranges[mid].end <= offset)
			lo = mid + 1;
		else if (a->ranges[mid].start > offset)
			hi = mid - 1;
		else
			return a->ranges[mid].name;
	}
	return AREA_NONE;
}

static int
area_index(const Areas *a, const char *name)
{
	for (int k = 0; k < a->nnames; k++)
		if (strcmp(a->names[k], name) == 0)
			return k;
	fail("no area is named \"%s\"", name);
	return AREA_NONE;
}

/* FNV-1a, 64 bits, of one page: which copy is which */
static uint64_t
page_hash(const unsigned char *p)
{
	uint64_t	h = 0xcbf29ce484222325ULL;

	for (int i = 0; i < PAGE_SIZE_PG; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* Open addressing: page hash -> sequence number of its latest copy. */
typedef struct CopyTable
{
	uint64_t   *keys;			/* 0: empty slot (a hash of 0 is bumped) */
	uint64_t   *seqs;
	size_t		cap;			/* a power of two */
	size_t		n;
} CopyTable;

static void copies_put(CopyTable *t, uint64_t key, uint64_t seq);

static void
copies_grow(CopyTable *t)
{
	CopyTable	bigger = {0};

	bigger.cap = t->cap ? t->cap * 2 : 1 << 16;
	bigger.keys = calloc(bigger.cap, sizeof(uint64_t));
	bigger.seqs = calloc(bigger.cap, sizeof(uint64_t));
	if (bigger.keys == NULL || bigger.seqs == NULL)
		fail("out of memory");
	for (size_t i = 0; i < t->cap; i++)
		if (t->keys[i] != 0)
			copies_put(&bigger, t->keys[i], t->seqs[i]);
	free(t->keys);
	free(t->seqs);
	*t = bigger;
}

static void
copies_put(CopyTable *t, uint64_t key, uint64_t seq)
{
	size_t		i;

	if (key == 0)
		key = 1;
	if ((t->n + 1) * 2 > t->cap)
		copies_grow(t);
	for (i = key & (t->cap - 1); t->keys[i] != 0 && t->keys[i] != key;
		 i = (i + 1) & (t->cap - 1))
		;
	if (t->keys[i] == 0)
		t->n++;
	t->keys[i] = key;
	t->seqs[i] = seq;
}

/* the sequence number of the latest copy of key, or false */
static bool
copies_get(const CopyTable *t, uint64_t key, uint64_t *seq)
{
	if (key == 0)
		key = 1;
	if (t->cap == 0)
		return false;
	for (size_t i = key & (t->cap - 1); t->keys[i] != 0; i = (i + 1) & (t->cap - 1))
	{
		if (t->keys[i] == key)
		{
			*seq = t->seqs[i];
			return true;
		}
	}
	return false;
}

/* Apply a whole record to an image. */
static void
apply_record(int fd, LogReader *r, const char *what)
{
	if (r->rec.type == TORNLOG_WRITE)
		pwrite_all(fd, r->data, r->rec.len, r->rec.offset, what);
	else if (r->rec.type == TORNLOG_ZERO)
	{
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  (off_t) r->rec.offset, (off_t) r->rec.len) != 0)
			fail("could not zero a range of %s: %s", what, strerror(errno));
	}
}

/* ---- stats ---- */

static int
cmd_stats(const char *path)
{
	LogReader	r;
	uint64_t	n = 0,
				writes = 0,
				wbytes = 0,
				zeros = 0,
				flushes = 0,
				closes = 0,
				marks = 0,
				page_writes = 0,
				pages = 0,
				maxlen = 0;

	log_open(&r, path, 0);
	while (log_next(&r, true))
	{
		n++;
		switch (r.rec.type)
		{
			case TORNLOG_WRITE:
				{
					int			np = count_pages(r.rec.offset, (unsigned char *) r.data,
												 r.rec.len, NULL, NULL);

					writes++;
					wbytes += r.rec.len;
					if (r.rec.len > maxlen)
						maxlen = r.rec.len;
					pages += np;
					page_writes += np > 0;
					break;
				}
			case TORNLOG_ZERO:
				zeros++;
				break;
			case TORNLOG_FSYNC:
				flushes++;
				break;
			case TORNLOG_CLOSE:
				closes++;
				break;
			case TORNLOG_MARK:
				marks++;
				printf("mark %" PRIu64 ": %.*s\n", r.rec.seq,
					   (int) strcspn(r.data, "\n") < (int) r.rec.len ?
					   (int) strcspn(r.data, "\n") : (int) r.rec.len, r.data);
				break;
		}
	}
	printf("records %" PRIu64 ": %" PRIu64 " writes (%" PRIu64 " bytes, largest %" PRIu64
		   "), %" PRIu64 " zeroed ranges, %" PRIu64 " flushes, %" PRIu64
		   " closes, %" PRIu64 " marks; %" PRIu64 " writes carry %" PRIu64
		   " relation pages\n",
		   n, writes, wbytes, maxlen, zeros, flushes, closes, marks,
		   page_writes, pages);
	return 0;
}

/* ---- plan ---- */

typedef struct U64Array
{
	uint64_t   *v;
	size_t		n;
	size_t		cap;
} U64Array;

static void
push(U64Array *a, uint64_t x)
{
	if (a->n == a->cap)
	{
		a->cap = a->cap ? a->cap * 2 : 1024;
		a->v = realloc(a->v, a->cap * sizeof(uint64_t));
		if (a->v == NULL)
			fail("out of memory");
	}
	a->v[a->n++] = x;
}

typedef struct PlannedState
{
	uint64_t	flush;
	uint64_t	crash;
	uint64_t	seed;
} PlannedState;

static int
cmp_state(const void *a, const void *b)
{
	const PlannedState *x = a,
			   *y = b;

	if (x->flush != y->flush)
		return x->flush < y->flush ? -1 : 1;
	if (x->crash != y->crash)
		return x->crash < y->crash ? -1 : 1;
	return 0;
}

/* index of the last element <= x in a sorted array, or -1 */
static long
last_at_most(const U64Array *a, uint64_t x)
{
	long		lo = 0,
				hi = (long) a->n - 1,
				ans = -1;

	while (lo <= hi)
	{
		long		mid = (lo + hi) / 2;

		if (a->v[mid] <= x)
		{
			ans = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	return ans;
}

/*
 * count_pages() callback context that sorts a write's relation pages by
 * area, for plan --target (which only asks which areas a write's pages lie
 * in: table NULL) and for areas (which also follows their copies).
 */
typedef struct AreaCount
{
	const Areas *areas;
	int			copies;			/* the area whose writes are copies */
	const unsigned char *data;
	uint64_t	offset;
	uint64_t	seq;
	uint64_t	last_flush;		/* seq of the latest flush, or 0 */
	bool		any_flush;
	CopyTable  *table;
	uint64_t	pages[MAX_AREA_NAMES + 1];
	uint64_t	writes[MAX_AREA_NAMES + 1];
	bool		in_write[MAX_AREA_NAMES + 1];
	uint64_t	outside;
	uint64_t	copied;
	uint64_t	uncopied;
} AreaCount;

static void
count_area_page(uint64_t at, void *arg)
{
	AreaCount  *ac = arg;
	int			k = area_of(ac->areas, ac->offset + at);
	int			slot = k == AREA_NONE ? ac->areas->nnames : k;
	uint64_t	h;
	uint64_t	copy_seq;

	ac->pages[slot]++;
	ac->in_write[slot] = true;
	if (ac->table == NULL)
		return;					/* plan: which areas, no more */
	h = page_hash(ac->data + at);
	if (k == ac->copies)
	{
		/* an identical copy that is durable already stays the one */
		if (!copies_get(ac->table, h, &copy_seq) || !ac->any_flush ||
			ac->last_flush < copy_seq)
			copies_put(ac->table, h, ac->seq);
		return;
	}
	ac->outside++;
	if (copies_get(ac->table, h, &copy_seq) && ac->any_flush &&
		ac->last_flush > copy_seq)
		ac->copied++;
	else
		ac->uncopied++;
}

/*
 * The relation pages of the write just read, sorted by area into ac (when
 * ac->areas is set): in_write says which areas they lie in.  Returns how
 * many there are.
 */
static int
count_write_areas(AreaCount *ac, const LogReader *r)
{
	ac->data = (unsigned char *) r->data;
	ac->offset = r->rec.offset;
	ac->seq = r->rec.seq;
	memset(ac->in_write, 0, sizeof(ac->in_write));
	return count_pages(r->rec.offset, ac->data, r->rec.len,
					   ac->areas ? count_area_page : NULL, ac);
}

static int
cmd_plan(const char *path, const char *mark, long states, uint64_t seed,
		 const char *areas_path, const char *target_name)
{
	Areas		areas;
	AreaCount	ac = {0};
	int			target = AREA_NONE;
	LogReader	r;
	U64Array	flushes = {0},
				targets = {0},
				in_area = {0};
	bool		after_mark = false;
	uint64_t	last_seq = 0;
	uint64_t	rng = seed;
	PlannedState *plan;

	if (areas_path != NULL)
	{
		areas_load(&areas, areas_path);
		ac.areas = &areas;
		target = area_index(&areas, target_name);
	}
	log_open(&r, path, 0);
	while (log_next(&r, true))
	{
		last_seq = r.rec.seq;
		if (r.rec.type == TORNLOG_FSYNC)
			push(&flushes, r.rec.seq);
		else if (!after_mark && is_mark(&r, mark))
			after_mark = true;
		else if (r.rec.type == TORNLOG_WRITE && after_mark)
		{
			if (count_write_areas(&ac, &r) > 0)
				push(&targets, r.rec.seq);
			if (ac.areas != NULL && ac.in_write[target])
				push(&in_area, r.rec.seq);
		}
	}
	if (!after_mark)
		fail("log \"%s\" has no mark \"%s\"", path, mark);
	if (targets.n == 0)
		fail("log \"%s\" has no write of a relation page after mark \"%s\"", path, mark);
	if (ac.areas != NULL && in_area.n == 0)
		fail("log \"%s\" has no write of a relation page in area \"%s\" after mark \"%s\"",
			 path, target_name, mark);
	if (flushes.n == 0)
		fail("log \"%s\" has no flush", path);

	if (ac.areas != NULL)
		printf("plan seed %" PRIu64 ": %ld states, half among %zu writes of relation pages in area %s, half among all %zu, %zu flushes\n",
			   seed, states, in_area.n, target_name, targets.n, flushes.n);
	else
		printf("plan seed %" PRIu64 ": %ld states among %zu writes of relation pages, %zu flushes\n",
			   seed, states, targets.n, flushes.n);
	plan = calloc(states, sizeof(PlannedState));
	for (long k = 0; k < states; k++)
	{
		const U64Array *from = ac.areas != NULL && k % 2 == 0 ?
			&in_area : &targets;
		uint64_t	w = from->v[rng_below(&rng, from->n)];
		long		fi = last_at_most(&flushes, w);
		uint64_t	next = (size_t) (fi + 1) < flushes.n ? flushes.v[fi + 1] : last_seq + 1;

		/* a target write before every flush: crash from the log's start */
		plan[k].flush = fi >= 0 ? flushes.v[fi] : 0;
		plan[k].crash = w + rng_below(&rng, next - w);
		plan[k].seed = rng_next(&rng);
	}
	qsort(plan, states, sizeof(PlannedState), cmp_state);
	for (long k = 0; k < states; k++)
		printf("state %ld flush %" PRIu64 " crash %" PRIu64 " seed %" PRIu64 "\n",
			   k + 1, plan[k].flush, plan[k].crash, plan[k].seed);
	return 0;
}

/* ---- build ---- */

typedef struct PageCheck
{
	const unsigned char *old;	/* image content under the write */
	const unsigned char *new;	/* what was written */
	const unsigned char *mask;	/* per sector: applied? */
	uint64_t	sector;
	uint64_t	offset;
	int			torn;
	const Areas *areas;			/* NULL: not counted by area */
	uint64_t   *torn_by_area;	/* [nnames + 1], "none" last */
} PageCheck;

static void
check_page(uint64_t at, void *arg)
{
	PageCheck  *pc = arg;
	bool		differs_from_new = false,
				differs_from_old = false;

	/*
	 * The page now holds the new bytes of the sectors applied and the old
	 * bytes of the others: it differs from what was written where a sector
	 * left out held other bytes, and from what was there where a sector
	 * applied did.
	 */
	for (uint64_t b = at; b < at + PAGE_SIZE_PG; b++)
	{
		uint64_t	s = (pc->offset + b) / pc->sector - pc->offset / pc->sector;

		if (pc->old[b] == pc->new[b])
			continue;
		if (pc->mask[s])
			differs_from_old = true;
		else
			differs_from_new = true;
	}
	if (differs_from_old && differs_from_new)
	{
		pc->torn++;
		if (pc->areas)
		{
			int			k = area_of(pc->areas, pc->offset + at);

			pc->torn_by_area[k == AREA_NONE ? pc->areas->nnames : k]++;
		}
	}
}

/*
 * Apply one write after the flush: whole, dropped or torn, as the rng
 * says, and count what it did to relation pages.
 */
static void
apply_tail_record(int fd, LogReader *r, uint64_t sector, bool no_tear,
				  uint64_t *rng, TailCounts *tc, const Areas *areas,
				  uint64_t *torn_by_area, const char *what)
{
	uint64_t	off = r->rec.offset,
				len = r->rec.len;
	uint64_t	first = off / sector,
				last = (off + len - 1) / sector,
				nsect = last - first + 1;
	int			choice;
	unsigned char *mask;
	static unsigned char *zeros;
	static size_t zeros_len;
	const unsigned char *data;
	int			np;

	if (r->rec.type != TORNLOG_WRITE && r->rec.type != TORNLOG_ZERO)
		return;
	if (off % sector != 0 || len % sector != 0)
		fail("record %" PRIu64 " (offset %" PRIu64 ", %" PRIu64
			 " bytes) is not aligned to %" PRIu64 "-byte sectors; "
			 "the loop device's sector size must be --sector",
			 r->rec.seq, off, len, sector);
	if (r->rec.type == TORNLOG_ZERO)
	{
		if (len > zeros_len)
		{
			free(zeros);
			zeros = calloc(1, len);
			if (zeros == NULL)
				fail("out of memory");
			zeros_len = len;
		}
		data = zeros;
	}
	else
		data = (unsigned char *) r->data;

	tc->writes++;
	choice = (int) rng_below(rng, 3);
	if (choice == 2 && (nsect < 2 || no_tear))
		choice = (int) rng_below(rng, 2);	/* one sector cannot tear */
	np = r->rec.type == TORNLOG_WRITE ?
		count_pages(off, data, len, NULL, NULL) : 0;
	tc->pages += np;
	if (choice == 0)
	{
		tc->applied++;
		pwrite_all(fd, data, len, off, what);
		return;
	}
	if (choice == 1)
	{
		tc->dropped++;
		return;
	}

	/* torn: each sector applied or not, at least one of each */
	tc->torn++;
	mask = malloc(nsect);
	if (mask == NULL)
		fail("out of memory");
	for (;;)
	{
		uint64_t	on = 0;

		for (uint64_t s = 0; s < nsect; s++)
			on += (mask[s] = (unsigned char) (rng_next(rng) & 1));
		if (on > 0 && on < nsect)
			break;
	}
	if (np > 0)
	{
		unsigned char *old = malloc(len);
		PageCheck	pc;

		if (old == NULL)
			fail("out of memory");
		pread_all(fd, old, len, off, what);
		pc.old = old;
		pc.new = data;
		pc.mask = mask;
		pc.sector = sector;
		pc.offset = off;
		pc.torn = 0;
		pc.areas = areas;
		pc.torn_by_area = torn_by_area;
		count_pages(off, data, len, check_page, &pc);
		tc->torn_pages += pc.torn;
		tc->torn_page_writes += pc.torn > 0;
		free(old);
	}
	for (uint64_t s = 0; s < nsect; s++)
		if (mask[s])
			pwrite_all(fd, data + s * sector, sector, off + s * sector, what);
	free(mask);
}

/* Copy a sparse file's data regions. */
static void
copy_image(const char *from, const char *to, uint64_t size)
{
	int			in = open(from, O_RDONLY);
	int			out = open(to, O_RDWR | O_CREAT | O_TRUNC, 0600);
	off_t		pos = 0;
	static char buf[1024 * 1024];

	if (in < 0)
		fail("could not open \"%s\": %s", from, strerror(errno));
	if (out < 0)
		fail("could not create \"%s\": %s", to, strerror(errno));
	if (ftruncate(out, (off_t) size) != 0)
		fail("could not size \"%s\": %s", to, strerror(errno));
	for (;;)
	{
		off_t		data = lseek(in, pos, SEEK_DATA),
					hole;

		if (data < 0)
			break;				/* ENXIO: no data after pos */
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			fail("could not seek in \"%s\": %s", from, strerror(errno));
		for (off_t p = data; p < hole;)
		{
			ssize_t		n = pread(in, buf, hole - p < (off_t) sizeof(buf) ?
								  (size_t) (hole - p) : sizeof(buf), p);

			if (n <= 0)
				fail("could not read \"%s\": %s", from, strerror(errno));
			pwrite_all(out, buf, n, p, to);
			p += n;
		}
		pos = hole;
	}
	if (close(out) != 0)
		fail("could not write \"%s\": %s", to, strerror(errno));
	close(in);
}

/*
 * Bring the prefix image up to (and including) record F.  Its .pos file
 * holds "NEXTSEQ BYTEPOS LOGPATH"; a prefix from another log, or already
 * past F, is rebuilt from an empty image.
 */
static void
advance_prefix(const char *logpath, const char *prefix, uint64_t flush, uint64_t size)
{
	char		pospath[4096];
	FILE	   *pf;
	uint64_t	next_seq = 0,
				byte_pos = 0;
	char		saved_log[4096] = "";
	int			fd;
	LogReader	r;

	snprintf(pospath, sizeof(pospath), "%s.pos", prefix);
	pf = fopen(pospath, "r");
	if (pf != NULL)
	{
		if (fscanf(pf, "%" SCNu64 " %" SCNu64 " %4095s", &next_seq, &byte_pos, saved_log) != 3)
			next_seq = byte_pos = 0;
		fclose(pf);
	}
	if (strcmp(saved_log, logpath) != 0 || next_seq > flush + 1 ||
		access(prefix, F_OK) != 0)
	{
		next_seq = byte_pos = 0;
		fd = open(prefix, O_RDWR | O_CREAT | O_TRUNC, 0600);
	}
	else
		fd = open(prefix, O_RDWR);
	if (fd < 0)
		fail("could not open prefix image \"%s\": %s", prefix, strerror(errno));
	if (ftruncate(fd, (off_t) size) != 0)
		fail("could not size \"%s\": %s", prefix, strerror(errno));

	log_open(&r, logpath, byte_pos);
	while (next_seq <= flush && log_next(&r, true))
	{
		if (r.rec.seq != next_seq)
			fail("log \"%s\": record %" PRIu64 " where %" PRIu64 " was expected",
				 logpath, r.rec.seq, next_seq);
		apply_record(fd, &r, prefix);
		next_seq++;
	}
	if (next_seq <= flush)
		fail("log \"%s\" ends before record %" PRIu64, logpath, flush);
	if (close(fd) != 0)
		fail("could not write \"%s\": %s", prefix, strerror(errno));
	pf = fopen(pospath, "w");
	if (pf == NULL ||
		fprintf(pf, "%" PRIu64 " %" PRIu64 " %s\n", next_seq, r.pos, logpath) < 0 ||
		fclose(pf) != 0)
		fail("could not write \"%s\"", pospath);
	fclose(r.f);
	free(r.data);
}

static int
cmd_build(const char *logpath, uint64_t flush, uint64_t crash, uint64_t seed,
		  uint64_t sector, uint64_t size, const char *prefix, bool no_tear,
		  const char *areas_path, const char *out)
{
	LogReader	r;
	TailCounts	tc = {0};
	Areas		areas;
	uint64_t	torn_by_area[MAX_AREA_NAMES + 1] = {0};
	uint64_t	rng = seed;
	uint64_t	start_pos = 0;
	int			fd;
	char		abslog[4096];

	if (crash < flush)
		fail("the crash point (%" PRIu64 ") is before the flush (%" PRIu64 ")", crash, flush);
	if (realpath(logpath, abslog) == NULL)
		fail("could not find log \"%s\": %s", logpath, strerror(errno));
	if (areas_path != NULL)
		areas_load(&areas, areas_path);

	if (prefix != NULL)
	{
		char		pospath[4096];
		FILE	   *pf;
		uint64_t	next_seq;

		advance_prefix(abslog, prefix, flush, size);
		copy_image(prefix, out, size);
		snprintf(pospath, sizeof(pospath), "%s.pos", prefix);
		pf = fopen(pospath, "r");
		if (pf == NULL || fscanf(pf, "%" SCNu64 " %" SCNu64, &next_seq, &start_pos) != 2)
			fail("could not read \"%s\"", pospath);
		fclose(pf);
		fd = open(out, O_RDWR);
		log_open(&r, abslog, start_pos);
	}
	else
	{
		fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0 && ftruncate(fd, (off_t) size) != 0)
			fail("could not size \"%s\": %s", out, strerror(errno));
		log_open(&r, abslog, 0);
	}
	if (fd < 0)
		fail("could not open \"%s\": %s", out, strerror(errno));

	while (log_next(&r, true))
	{
		if (r.rec.seq > crash)
			break;
		if (r.rec.seq <= flush)
			apply_record(fd, &r, out);
		else
			apply_tail_record(fd, &r, sector, no_tear, &rng, &tc,
							  areas_path ? &areas : NULL, torn_by_area, out);
	}
	if (close(fd) != 0)
		fail("could not write \"%s\": %s", out, strerror(errno));
	printf("tail %" PRIu64 " writes: %" PRIu64 " applied, %" PRIu64 " dropped, %" PRIu64
		   " torn; relation pages: %" PRIu64 " in flight, %" PRIu64 " torn (in %" PRIu64 " writes)",
		   tc.writes, tc.applied, tc.dropped, tc.torn, tc.pages, tc.torn_pages,
		   tc.torn_page_writes);
	if (areas_path != NULL)
	{
		printf("; torn by area:");
		for (int k = 0; k < areas.nnames; k++)
			printf(" %s %" PRIu64 ",", areas.names[k], torn_by_area[k]);
		printf(" none %" PRIu64, torn_by_area[areas.nnames]);
	}
	printf("\n");
	return 0;
}

/* ---- areas ---- */

static int
cmd_areas(const char *path, const char *mark, const char *areas_path,
		  const char *copies_name)
{
	LogReader	r;
	Areas		areas;
	CopyTable	table = {0};
	AreaCount	ac;
	bool		after_mark = false;

	areas_load(&areas, areas_path);
	memset(&ac, 0, sizeof(ac));
	ac.areas = &areas;
	ac.copies = area_index(&areas, copies_name);
	ac.table = &table;

	log_open(&r, path, 0);
	while (log_next(&r, true))
	{
		if (r.rec.type == TORNLOG_FSYNC)
		{
			ac.last_flush = r.rec.seq;
			ac.any_flush = true;
		}
		else if (!after_mark && is_mark(&r, mark))
			after_mark = true;
		else if (r.rec.type == TORNLOG_WRITE && after_mark)
		{
			count_write_areas(&ac, &r);
			for (int k = 0; k <= areas.nnames; k++)
				ac.writes[k] += ac.in_write[k];
		}
	}
	if (!after_mark)
		fail("log \"%s\" has no mark \"%s\"", path, mark);
	for (int k = 0; k <= areas.nnames; k++)
		printf("area %s: %" PRIu64 " relation pages in %" PRIu64 " writes\n",
			   k < areas.nnames ? areas.names[k] : "none", ac.pages[k], ac.writes[k]);
	printf("outside %s: %" PRIu64 " relation pages, %" PRIu64
		   " after a durable copy in it, %" PRIu64 " without\n",
		   copies_name, ac.outside, ac.copied, ac.uncopied);
	return 0;
}

static uint64_t
parse_u64(const char *s, const char *what)
{
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		fail("invalid %s: \"%s\"", what, s);
	return (uint64_t) v;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: tornreplay stats LOG\n"
			"       tornreplay plan LOG --mark LABEL --states N --seed S [--areas FILE --target NAME]\n"
			"       tornreplay build LOG --flush F --crash C --seed S --sector N --size BYTES\n"
			"                        [--prefix IMAGE] [--no-tear] [--areas FILE] --out IMAGE\n"
			"       tornreplay areas LOG --mark LABEL --areas FILE --copies NAME\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *mark = NULL,
			   *prefix = NULL,
			   *areas = NULL,
			   *copies = NULL,
			   *target = NULL,
			   *out = NULL;
	uint64_t	flush = 0,
				crash = 0,
				seed = 0,
				sector = 4096,
				size = 0;
	long		states = 0;
	bool		no_tear = false,
				have_flush = false,
				have_crash = false,
				have_seed = false;

	if (argc < 3)
		usage();
	for (int i = 3; i < argc; i++)
	{
		const char *opt = argv[i];

		if (strcmp(opt, "--no-tear") == 0)
		{
			no_tear = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(opt, "--mark") == 0)
			mark = argv[++i];
		else if (strcmp(opt, "--states") == 0)
			states = (long) parse_u64(argv[++i], "--states");
		else if (strcmp(opt, "--seed") == 0)
		{
			seed = parse_u64(argv[++i], "--seed");
			have_seed = true;
		}
		else if (strcmp(opt, "--flush") == 0)
		{
			flush = parse_u64(argv[++i], "--flush");
			have_flush = true;
		}
		else if (strcmp(opt, "--crash") == 0)
		{
			crash = parse_u64(argv[++i], "--crash");
			have_crash = true;
		}
		else if (strcmp(opt, "--sector") == 0)
			sector = parse_u64(argv[++i], "--sector");
		else if (strcmp(opt, "--size") == 0)
			size = parse_u64(argv[++i], "--size");
		else if (strcmp(opt, "--prefix") == 0)
			prefix = argv[++i];
		else if (strcmp(opt, "--out") == 0)
			out = argv[++i];
		else if (strcmp(opt, "--areas") == 0)
			areas = argv[++i];
		else if (strcmp(opt, "--copies") == 0)
			copies = argv[++i];
		else if (strcmp(opt, "--target") == 0)
			target = argv[++i];
		else
			usage();
	}
	if (sector == 0 || (sector & (sector - 1)) != 0)
		fail("--sector must be a power of two");

	if (strcmp(argv[1], "stats") == 0)
		return cmd_stats(argv[2]);
	if (strcmp(argv[1], "plan") == 0)
	{
		if (mark == NULL || states <= 0 || !have_seed ||
			(areas == NULL) != (target == NULL))
			usage();
		return cmd_plan(argv[2], mark, states, seed, areas, target);
	}
	if (strcmp(argv[1], "build") == 0)
	{
		if (!have_flush || !have_crash || !have_seed || out == NULL || size == 0)
			usage();
		return cmd_build(argv[2], flush, crash, seed, sector, size, prefix,
						 no_tear, areas, out);
	}
	if (strcmp(argv[1], "areas") == 0)
	{
		if (mark == NULL || areas == NULL || copies == NULL)
			usage();
		return cmd_areas(argv[2], mark, areas, copies);
	}
	usage();
	return 2;
}
