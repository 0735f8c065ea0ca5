/*
 * dirty: the lab guest's memory-dirtying load.
 *
 *   dirty MIB [RATE_MIB_PER_S]
 *
 * Allocates MIB MiB, touches every page once, then rewrites one byte in
 * each 4 KiB page over and over, at RATE MiB/s (pages per second =
 * RATE * 256) or as fast as it can when RATE is 0 or absent. Every
 * 10 seconds it prints "dirty: N MiB written" on stdout, so the serial log
 * shows it is alive. Built with `gcc -static` on the controller and
 * packed into the guest's initramfs; init starts it when the kernel
 * command line carries `dirty=MIB[,RATE]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096UL

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s MIB [RATE_MIB_PER_S]\n", argv[0]);
		return 2;
	}
	char *end;
	unsigned long mib = strtoul(argv[1], &end, 10);
	if (*end || mib == 0) {
		fprintf(stderr, "dirty: MIB must be a positive integer, got '%s'\n", argv[1]);
		return 2;
	}
	double rate = 0;
	if (argc == 3) {
		rate = strtod(argv[2], &end);
		if (*end || rate < 0) {
			fprintf(stderr, "dirty: RATE must be a number >= 0 (MiB/s), got '%s'\n", argv[2]);
			return 2;
		}
	}
	size_t bytes = mib << 20;
	unsigned char *mem = malloc(bytes);
	if (!mem) {
		fprintf(stderr, "dirty: cannot allocate %lu MiB\n", mib);
		return 1;
	}
	memset(mem, 1, bytes);
	size_t pages = bytes / PAGE;
	/* Work in slices of 1/100 s so the rate is smooth. */
	double slice = 0.01;
	size_t per_slice = rate > 0 ? (size_t)(rate * 256 * slice) : pages;
	if (per_slice == 0)
		per_slice = 1;
	size_t page = 0;
	unsigned char tick = 0;
	double start = now(), last_report = start, next = start;
	unsigned long long written = 0;
	printf("dirty: %lu MiB at %s%.1f MiB/s\n", mib, rate > 0 ? "" : "max ", rate);
	fflush(stdout);
	for (;;) {
		for (size_t i = 0; i < per_slice; i++) {
			mem[page * PAGE] = tick;
			if (++page == pages) {
				page = 0;
				tick++;
			}
		}
		written += per_slice;
		double t = now();
		if (t - last_report >= 10) {
			printf("dirty: %llu MiB written\n", written / 256);
			fflush(stdout);
			last_report = t;
		}
		if (rate > 0) {
			next += slice;
			double wait = next - now();
			if (wait > 0) {
				struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
				nanosleep(&ts, NULL);
			} else if (wait < -1) {
				next = now(); /* fell behind by over 1 s: do not burst to catch up */
			}
		}
	}
}
