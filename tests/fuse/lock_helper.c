/*
 * lock_helper.c — a scripted lock holder for the lock tests (tests/fuse/
 * locks.sh): opens PATH (O_RDWR|O_CREAT) and runs its steps in order on that
 * one descriptor, appending one line per step to LOG as "NAME STEP RESULT"
 * (RESULT "ok", a value, or the errno name of the failure: EAGAIN, EINTR...).
 * A step that may block first logs "NAME STEP start".  LOG is a local file
 * opened O_APPEND and every line is one write(2), so the lines of several
 * helpers are in the order their events happened; tests wait for lines,
 * never for time.
 *
 *   lk:T:START:LEN     fcntl F_SETLK, T = r (F_RDLCK), w (F_WRLCK) or u (F_UNLCK)
 *   lkw:T:START:LEN    fcntl F_SETLKW (may block)
 *   ofd:T:START:LEN    fcntl F_OFD_SETLK
 *   ofdw:T:START:LEN   fcntl F_OFD_SETLKW (may block)
 *   get:T:START:LEN    fcntl F_GETLK -> "unlck" or "rdlck|wrlck START LEN"
 *   fl:sh|ex|un[:nb]   flock(2) (may block without nb)
 *   rd:LEN             pread LEN bytes at 0 -> the bytes read
 *   wr:TEXT            pwrite TEXT at 0
 *   say:TEXT           log TEXT
 *   wait:FIFO          block until a writer opens FIFO and closes it
 *   close              close the descriptor
 *   open2              open PATH again (O_RDWR), as a second descriptor
 *   close2             close the second descriptor
 *   hold               block until killed
 *
 * SIGUSR1 interrupts a blocking step (its handler does nothing and is
 * installed without SA_RESTART), which then reports EINTR.  Exit status 0
 * unless the arguments are wrong (2) or the log cannot be written (1).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char *name, *path;
static int log_fd = -1, fd = -1, fd2 = -1;

static void say(const char *step, const char *result)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s %s\n", name, step, result);
    if (n < 0 || (size_t)n >= sizeof line || write(log_fd, line, (size_t)n) != n) {
        perror("lock_helper: log");
        exit(1);
    }
}

static void say_rc(const char *step, int rc)
{
    say(step, rc < 0 ? strerrorname_np(errno) : "ok");
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* "T:START:LEN" -> l; 0 or -1 when malformed. */
static int parse_range(const char *spec, struct flock *l)
{
    char t;
    long long start, len;
    if (sscanf(spec, "%c:%lld:%lld", &t, &start, &len) != 3)
        return -1;
    memset(l, 0, sizeof *l);
    l->l_type = t == 'r' ? F_RDLCK : t == 'w' ? F_WRLCK : t == 'u' ? F_UNLCK : -1;
    l->l_whence = SEEK_SET;
    l->l_start = start;
    l->l_len = len;
    return l->l_type == (short)-1 ? -1 : 0;
}

static int step_fcntl(const char *step, const char *args, int cmd, int blocks)
{
    struct flock l;
    if (parse_range(args, &l) != 0)
        return -1;
    if (blocks)
        say(step, "start");
    say_rc(step, fcntl(fd, cmd, &l));
    return 0;
}

static int step_getlk(const char *step, const char *args)
{
    struct flock l;
    if (parse_range(args, &l) != 0)
        return -1;
    if (fcntl(fd, F_GETLK, &l) < 0) {
        say_rc(step, -1);
        return 0;
    }
    char out[64];
    if (l.l_type == F_UNLCK)
        snprintf(out, sizeof out, "unlck");
    else
        snprintf(out, sizeof out, "%s %lld %lld", l.l_type == F_RDLCK ? "rdlck" : "wrlck",
                 (long long)l.l_start, (long long)l.l_len);
    say(step, out);
    return 0;
}

static int step_flock(const char *step, const char *args)
{
    int op = strncmp(args, "sh", 2) == 0 ? LOCK_SH
             : strncmp(args, "ex", 2) == 0 ? LOCK_EX
             : strncmp(args, "un", 2) == 0 ? LOCK_UN : -1;
    if (op < 0)
        return -1;
    if (strstr(args, ":nb") != NULL)
        op |= LOCK_NB;
    else if (op != LOCK_UN)
        say(step, "start");
    say_rc(step, flock(fd, op));
    return 0;
}

static int step_read(const char *step, const char *args)
{
    char buf[256];
    size_t len = strtoul(args, NULL, 0);
    if (len >= sizeof buf)
        return -1;
    ssize_t n = pread(fd, buf, len, 0);
    if (n < 0) {
        say_rc(step, -1);
        return 0;
    }
    buf[n] = '\0';
    say(step, buf);
    return 0;
}

static int step_wait(const char *step, const char *fifo)
{
    say(step, "start");
    int f = open(fifo, O_RDONLY);
    if (f < 0) {
        say_rc(step, -1);
        return 0;
    }
    char buf[64];
    ssize_t n;
    while ((n = read(f, buf, sizeof buf)) > 0)
        ;
    say_rc(step, n < 0 ? -1 : 0);
    return close(f) == 0 ? 0 : -1;
}

static int run(const char *step)
{
    const char *colon = strchr(step, ':');
    size_t cmdlen = colon != NULL ? (size_t)(colon - step) : strlen(step);
    const char *args = colon != NULL ? colon + 1 : "";
#define IS(s) (cmdlen == strlen(s) && strncmp(step, s, cmdlen) == 0)
    if (IS("lk")) return step_fcntl(step, args, F_SETLK, 0);
    if (IS("lkw")) return step_fcntl(step, args, F_SETLKW, 1);
    if (IS("ofd")) return step_fcntl(step, args, F_OFD_SETLK, 0);
    if (IS("ofdw")) return step_fcntl(step, args, F_OFD_SETLKW, 1);
    if (IS("get")) return step_getlk(step, args);
    if (IS("fl")) return step_flock(step, args);
    if (IS("rd")) return step_read(step, args);
    if (IS("wait")) return step_wait(step, args);
    if (IS("wr")) {
        ssize_t len = (ssize_t)strlen(args);
        ssize_t n = pwrite(fd, args, (size_t)len, 0);
        say_rc(step, n == len ? 0 : -1);
        return 0;
    }
    if (IS("say")) {
        say(step, "ok");
        return 0;
    }
    if (IS("close")) {
        say_rc(step, close(fd));
        fd = -1;
        return 0;
    }
    if (IS("open2")) {
        fd2 = open(path, O_RDWR);
        say_rc(step, fd2);
        return 0;
    }
    if (IS("close2")) {
        say_rc(step, close(fd2));
        fd2 = -1;
        return 0;
    }
    if (IS("hold")) {
        say(step, "start");
        for (;;)
            pause();
    }
#undef IS
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: lock_helper NAME LOG PATH STEP... (see the source)\n");
        return 2;
    }
    name = argv[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: a blocked fcntl returns EINTR */
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return 1;
    log_fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (log_fd < 0) {
        perror(argv[2]);
        return 1;
    }
    path = argv[3];
    fd = open(path, O_RDWR | O_CREAT, 0666);
    if (fd < 0) {
        say_rc("open", -1);
        return 0;
    }
    for (int i = 4; i < argc; i++) {
        if (run(argv[i]) != 0) {
            fprintf(stderr, "lock_helper: bad step %s\n", argv[i]);
            return 2;
        }
    }
    return 0;
}
