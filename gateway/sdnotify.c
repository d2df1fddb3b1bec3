/*
 * sdnotify.c: sd_notify(3) in twenty lines. The protocol is one datagram of
 * "KEY=VALUE\n..." text to the AF_UNIX socket whose path is in
 * $NOTIFY_SOCKET ('@' at the start means the abstract namespace). Doing it
 * by hand keeps libsystemd (and its dependencies) out of a security
 * gateway's address space, and makes Type=notify units possible: systemd
 * then starts dependants only once the gateway really listens.
 */
#include "gateway/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int gw_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0' || state == NULL) {
        return 0;
    }
    size_t plen = strlen(path);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path, path, plen);
    if (sa.sun_path[0] == '@') {
        sa.sun_path[0] = '\0'; /* abstract namespace */
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
    int e = errno;
    close(fd);
    errno = e;
    return n < 0 ? -1 : 1;
}
