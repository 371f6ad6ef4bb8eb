#!/usr/bin/env bash
# git.sh — git init/add/commit/log/fsck, a branch, a merge and a gc on the
# mount (lock files via O_EXCL, renames over existing files, fsync, mmap-free
# reads), then a clone off the mount that must match.
source "$(dirname "$0")/lib.sh"
need git
start_server
mount_fs
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1
repo=$MNT/repo
git init -q -b main "$repo" || fail "git init"
cd "$repo"
for i in $(seq 30); do mkdir -p "d$((i % 5))"; seq "$i" 1000 >"d$((i % 5))/f$i"; done
ln -s d1/f1 link
git add -A && git commit -qm first || fail "commit 1"
git checkout -qb side && echo side >side.txt && git add side.txt && git commit -qm side || fail "side commit"
git checkout -q main && sed -i 's/^5$/five/' d0/f5 && git commit -qam second || fail "commit 2"
git merge -q --no-edit side || fail "merge"
[ "$(git log --oneline | wc -l)" -eq 4 ] || fail "expected 4 commits: $(git log --oneline)"
git fsck --full --strict 2>&1 | tee "$WORK/fsck.out"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "git fsck failed"
git gc -q || fail "git gc"
git fsck --full --strict || fail "git fsck after gc"
[ -z "$(git status --porcelain)" ] || fail "status not clean: $(git status --porcelain)"
cd /
git clone -q "$repo" "$LOCAL/clone" || fail "clone off the mount"
diff -r --exclude=.git "$repo" "$LOCAL/clone" || fail "clone differs"
unmount_fs
pass
