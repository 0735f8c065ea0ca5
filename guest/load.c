/*
 * load: the lab guest's load program (one load model: memory, CPU, network, disk).
 *
 *   load [-m MIB[,RATE]] [-c THREADS] [-n IP:PORT,MBIT] [-r PORT] [-d PATH,MIB[,WHEN]]
 *
 *   -m  dirty a working set of MIB MiB: touch every page once, then rewrite one
 *       byte in each 4 KiB page over and over at RATE MiB/s (pages per second =
 *       RATE * 256), or as fast as it can when RATE is 0 or absent.
 *   -c  THREADS busy threads counting in a loop.
 *   -n  a UDP stream of 1400-byte datagrams to IP:PORT at MBIT Mbit/s (0: as fast
 *       as it can); nobody needs to listen.
 *   -r  receive a UDP stream on PORT (an inbound network load: the sender is this
 *       program's -n on another host); net_mbit_s is then what arrived.
 *   -d  write MIB MiB to PATH (a block device such as /dev/vda, or a file):
 *       WHEN = before (once, then stop; the default), during (over and over),
 *       or both. Writing before, it prints the rate of that write first
 *       ("ferry-load: t=0 disk_before_mib_s=X").
 *
 * Every second it prints one line on stdout (the serial console), which the
 * experiment driver parses for the rates the guest actually achieved:
 *
 *   ferry-load: t=12 dirty_mib_s=30.0 cpu_loops_s=1234567 net_mbit_s=0.0 disk_mib_s=0.0
 *
 * Built with `gcc -static` on the controller and packed into the guest's
 * initramfs; init starts it from the kernel command line (ferry.dirty=,
 * ferry.cpu=, ferry.net=, ferry.netin=, ferry.disk=). The same binary, copied to
 * a host, is the sender of an inbound stream and the load of a full guest.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static atomic_ullong dirtied_pages, cpu_loops, net_bytes, disk_bytes;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	double wait = t - now();
	if (wait > 0) {
		struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
		nanosleep(&ts, NULL);
	}
}

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "load: %s '%s'\n", msg, arg);
	exit(2);
}

/* --- memory */
static unsigned long mem_mib;
static double mem_rate;

static void *dirty_memory(void *unused)
{
	(void)unused;
	size_t bytes = mem_mib << 20;
	unsigned char *mem = malloc(bytes);
	if (!mem) {
		fprintf(stderr, "load: cannot allocate %lu MiB\n", mem_mib);
		return NULL;
	}
	memset(mem, 1, bytes);
	size_t pages = bytes / PAGE;
	double slice = 0.01; /* work in slices of 1/100 s so the rate is smooth */
	size_t per_slice = mem_rate > 0 ? (size_t)(mem_rate * 256 * slice) : 4096;
	if (per_slice == 0)
		per_slice = 1;
	size_t page = 0;
	unsigned char tick = 0;
	double next = now();
	for (;;) {
		for (size_t i = 0; i < per_slice; i++) {
			mem[page * PAGE] = tick;
			if (++page == pages) {
				page = 0;
				tick++;
			}
		}
		atomic_fetch_add(&dirtied_pages, per_slice);
		if (mem_rate > 0) {
			next += slice;
			if (next < now() - 1)
				next = now(); /* fell behind by over 1 s: do not burst to catch up */
			sleep_until(next);
		}
	}
}

/* --- cpu */
static void *spin(void *unused)
{
	(void)unused;
	for (;;) {
		for (volatile int i = 0; i < 100000; i++)
			;
		atomic_fetch_add(&cpu_loops, 1);
	}
	return NULL;
}

/* --- network */
static struct sockaddr_in net_to;
static double net_mbit;

static void *stream(void *unused)
{
	(void)unused;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0) {
		perror("load: socket");
		return NULL;
	}
	static char buf[1400];
	double per_s = net_mbit > 0 ? net_mbit * 1e6 / 8 / sizeof buf : 0;
	double next = now();
	for (;;) {
		if (sendto(s, buf, sizeof buf, 0, (struct sockaddr *)&net_to, sizeof net_to) > 0)
			atomic_fetch_add(&net_bytes, sizeof buf);
		else
			usleep(1000); /* no route yet, or the queue is full */
		if (per_s > 0) {
			next += 1 / per_s;
			if (next < now() - 1)
				next = now();
			sleep_until(next);
		}
	}
}

static unsigned short recv_port;

static void *receive(void *unused)
{
	(void)unused;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { 0 };
	a.sin_family = AF_INET;
	a.sin_port = htons(recv_port);
	a.sin_addr.s_addr = htonl(INADDR_ANY);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("load: receive socket");
		return NULL;
	}
	static char buf[65536];
	for (;;) {
		ssize_t n = recv(s, buf, sizeof buf, 0);
		if (n > 0)
			atomic_fetch_add(&net_bytes, (unsigned long long)n);
	}
}

/* --- disk */
static const char *disk_path;
static unsigned long disk_mib;
static int disk_before = 1, disk_during;

static void write_once(void)
{
	int fd = open(disk_path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		perror("load: open disk");
		return;
	}
	static char buf[1 << 20];
	memset(buf, 0x5a, sizeof buf);
	for (unsigned long i = 0; i < disk_mib; i++) {
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
			perror("load: write disk");
			break;
		}
		atomic_fetch_add(&disk_bytes, sizeof buf);
	}
	fsync(fd);
	close(fd);
}

static void *write_disk(void *unused)
{
	(void)unused;
	for (;;)
		write_once();
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 0, opt;
	char *end;
	while ((opt = getopt(argc, argv, "m:c:n:r:d:")) != -1) {
		switch (opt) {
		case 'm':
			mem_mib = strtoul(optarg, &end, 10);
			if (end == optarg || mem_mib == 0)
				die("-m MIB[,RATE]: MIB must be a positive integer, got", optarg);
			if (*end == ',') {
				mem_rate = strtod(end + 1, &end);
				if (mem_rate < 0)
					die("-m MIB[,RATE]: RATE must be >= 0 (MiB/s), got", optarg);
			}
			if (*end)
				die("-m MIB[,RATE]: cannot read", optarg);
			break;
		case 'c':
			threads = (int)strtol(optarg, &end, 10);
			if (*end || threads < 0)
				die("-c THREADS: not a number", optarg);
			break;
		case 'n': {
			char *colon = strchr(optarg, ':');
			char *comma = colon ? strchr(colon, ',') : NULL;
			if (!colon || !comma)
				die("-n IP:PORT,MBIT: cannot read", optarg);
			*colon = 0;
			*comma = 0;
			net_to.sin_family = AF_INET;
			net_to.sin_port = htons((unsigned short)atoi(colon + 1));
			if (inet_pton(AF_INET, optarg, &net_to.sin_addr) != 1)
				die("-n IP:PORT,MBIT: not an IPv4 address", optarg);
			net_mbit = strtod(comma + 1, NULL);
			break;
		}
		case 'r': {
			long port = strtol(optarg, &end, 10);
			if (*end || port <= 0 || port > 65535)
				die("-r PORT: not a port number", optarg);
			recv_port = (unsigned short)port;
			break;
		}
		case 'd': {
			char *comma = strchr(optarg, ',');
			if (!comma)
				die("-d PATH,MIB[,WHEN]: cannot read", optarg);
			*comma = 0;
			disk_path = optarg;
			disk_mib = strtoul(comma + 1, &end, 10);
			if (*end == ',') {
				const char *when = end + 1;
				disk_before = strcmp(when, "during") != 0;
				disk_during = strcmp(when, "before") != 0;
			}
			break;
		}
		default:
			fprintf(stderr, "usage: %s [-m MIB[,RATE]] [-c THREADS] [-n IP:PORT,MBIT] [-r PORT] [-d PATH,MIB[,WHEN]]\n", argv[0]);
			return 2;
		}
	}
	if (disk_path && disk_before) {
		/* before (and both): finish writing once, say how fast, then the rest starts */
		double t0 = now();
		write_once();
		printf("ferry-load: t=0 disk_before_mib_s=%.1f\n",
		       atomic_load(&disk_bytes) / 1048576.0 / (now() - t0));
		fflush(stdout);
	}
	pthread_t t;
	if (mem_mib)
		pthread_create(&t, NULL, dirty_memory, NULL);
	for (int i = 0; i < threads; i++)
		pthread_create(&t, NULL, spin, NULL);
	if (net_to.sin_family)
		pthread_create(&t, NULL, stream, NULL);
	if (recv_port)
		pthread_create(&t, NULL, receive, NULL);
	if (disk_path && disk_during)
		pthread_create(&t, NULL, write_disk, NULL);
	printf("ferry-load: start mem=%lu rate=%.1f cpu=%d net=%.1f disk=%lu\n", mem_mib, mem_rate,
	       threads, net_mbit, disk_mib);
	fflush(stdout);
	unsigned long long last[4] = { 0, 0, 0, atomic_load(&disk_bytes) };
	double start = now(), last_t = start;
	for (int sec = 1;; sec++) {
		sleep_until(start + sec);
		double t = now(), dt = t - last_t;
		unsigned long long cur[4] = { atomic_load(&dirtied_pages), atomic_load(&cpu_loops),
					      atomic_load(&net_bytes), atomic_load(&disk_bytes) };
		printf("ferry-load: t=%d dirty_mib_s=%.1f cpu_loops_s=%.0f net_mbit_s=%.1f disk_mib_s=%.1f\n",
		       sec, (cur[0] - last[0]) / 256.0 / dt, (cur[1] - last[1]) / dt,
		       (cur[2] - last[2]) * 8 / 1e6 / dt, (cur[3] - last[3]) / 1048576.0 / dt);
		fflush(stdout);
		memcpy(last, cur, sizeof last);
		last_t = t;
	}
}
