/* cserve: an HTTP/1.0 server in C on the socket calls a C program makes (socket,
 * setsockopt, bind, listen, accept4, read, write, shutdown, close), for pith's
 * end-to-end tests. It answers "hello from C PATH" on the port given, until GET /quit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(1);
}

int main(int argc, char **argv) {
	int port = argc > 1 ? atoi(argv[1]) : 8080;
	int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die("socket");
	int one = 1, zero = 0;
	if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("SO_REUSEADDR");
	if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
		die("IPV6_V6ONLY");
	struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
	if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0)
		die("bind");
	if (listen(s, 16) < 0)
		die("listen");
	printf("listening on %d\n", port);
	fflush(stdout);
	for (;;) {
		struct sockaddr_in6 peer;
		socklen_t len = sizeof peer;
		int c = accept4(s, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
		if (c < 0)
			die("accept4");
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		char req[4096];
		size_t got = 0;
		while (got < sizeof req - 1) {
			ssize_t n = read(c, req + got, sizeof req - 1 - got);
			if (n <= 0)
				break;
			got += n;
			req[got] = 0;
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = 0;
		char path[256] = "?";
		sscanf(req, "GET %255s", path);
		char body[512], resp[1024];
		int blen = snprintf(body, sizeof body, "hello from C %s\n", path);
		int rlen = snprintf(resp, sizeof resp, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", blen, body);
		if (write(c, resp, rlen) != rlen)
			perror("write");
		shutdown(c, SHUT_WR);
		close(c);
		printf("served %s\n", path);
		fflush(stdout);
		if (strcmp(path, "/quit") == 0)
			return 0;
	}
}
