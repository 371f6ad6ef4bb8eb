/*
 * ops_ext.c — worker-thread setup for file creation, and (later in this
 * file) the extension operations of the 70..79 opcode range.
 *
 * Creation modes.  A client (the kernel under dafs-fuse, or a libdafs
 * caller) sends the mode it wants a new file, directory or node to have,
 * with its own umask already applied.  dafsd must therefore create with
 * exactly that mode: applying dafsd's own umask on top would turn
 * mkdir(0777) into 0755 when dafsd was started from a shell with umask 022.
 * Each worker thread unshares its file-system attributes (CLONE_FS: root,
 * cwd and umask; dafsd uses no cwd-relative paths after startup) and sets
 * its own umask to 0, so dafsd's own files (state directory, ready file)
 * keep the operator's umask.  When the parent directory has a default ACL
 * the kernel ignores the umask anyway and applies the ACL, as locally.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

void ops_worker_thread_init(void)
{
    if (unshare(CLONE_FS) != 0) {
        log_error("cannot give a worker its own umask (unshare CLONE_FS): %s; aborting",
                  strerror(errno));
        abort();
    }
    (void)umask(0); /* umask() cannot fail */
}

/*
 * Set-id bits and writers.  When a user who is not the owner writes to or
 * truncates a set-user-ID or set-group-ID file, a local file system clears
 * those bits itself.  Through FUSE the kernel does it as a separate SETATTR
 * of the mode, sent as the writer (libfuse 3.14 never passes on
 * FUSE_HANDLE_KILLPRIV), and chmod as a non-owner fails with EPERM, which
 * failed the write.  Clearing set-id bits is something every writer does
 * anyway by writing, so a mode change that does nothing else is done as
 * root once the caller has shown it may write the file (an O_WRONLY open
 * as the caller succeeds).
 */
int ops_clear_setid(int pfd, uint32_t mode)
{
    const uint32_t setid = S_ISUID | S_ISGID;
    struct stat st;
    if (fstat(pfd, &st) != 0)
        return export_errno_status(errno);
    uint32_t cur = st.st_mode & 07777;
    mode &= 07777;
    bool only_clears = S_ISREG(st.st_mode) && (cur & ~setid) == (mode & ~setid) &&
                       (mode & ~cur) == 0 && mode != cur;
    if (!only_clears)
        return DAFS_ST_PERM;
    int fd;
    int status = ops_reopen(pfd, O_WRONLY | O_NONBLOCK, &fd);
    if (status != DAFS_ST_OK)
        return status == DAFS_ST_ACCES ? DAFS_ST_PERM : status;
    cred_suspend();
    int rc = fchmod(fd, mode);
    int err = errno;
    cred_resume();
    close(fd);
    return rc == 0 ? DAFS_ST_OK : export_errno_status(err);
}
