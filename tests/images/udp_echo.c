/* A UDP echo server for the traffic tests: answers every datagram with
   "<hostname> <datagram>" so a test can tell which pod answered. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9000;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("udp-echo");
        return 1;
    }
    char name[128] = "";
    gethostname(name, sizeof name - 1);
    for (;;) {
        char in[1024], out[1200];
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, in, sizeof in - 1, 0, (struct sockaddr *)&peer, &len);
        if (n < 0) continue;
        in[n] = 0;
        int m = snprintf(out, sizeof out, "%s %s", name, in);
        sendto(fd, out, (size_t)m, 0, (struct sockaddr *)&peer, len);
    }
}
