/*
 * sdnotify.h: systemd's readiness protocol (sd_notify(3)) without linking
 * libsystemd -- one datagram to the socket named in $NOTIFY_SOCKET.
 *
 * Owns nothing. Must not: block or fail the caller; when not started by
 * systemd ($NOTIFY_SOCKET unset) every call is a no-op.
 * Thread rules: any thread (one sendto(2) per call).
 *
 * Where the gateway calls it (examples/gatehouse.service has Type=notify):
 *   "READY=1"                 after the listeners and workers are up (gw_serve)
 *   "RELOADING=1"             when a reload starts (SIGHUP or a changed TLS file)
 *   "READY=1"                 when that reload finished (applied or refused)
 *   "STOPPING=1"              when the drain starts (SIGTERM/SIGINT)
 *   "STATUS=..."              optional free text shown by `systemctl status`
 */
#ifndef GW_SDNOTIFY_H
#define GW_SDNOTIFY_H

/* Send state (e.g. "READY=1\nSTATUS=listening on 0.0.0.0:8443"). Returns 1
 * if sent, 0 if $NOTIFY_SOCKET is unset, -1 on error (errno kept). */
int gw_sd_notify(const char *state);

#endif
