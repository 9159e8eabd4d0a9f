package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Lock files inside the repository directory.
const (
	// ReadLockFile is held shared by every process that has the
	// repository open; the collector deletes pack files only when it can
	// hold it alone (no reader can be reading a pack it deletes).
	ReadLockFile = "read.lock"
	// GCLockFile admits one garbage collection at a time.
	GCLockFile = "gc.lock"
)

// ErrLocked is returned when another writer holds the repository lock.
var ErrLocked = errors.New("repository is locked by another writer")

// ErrGCRunning is returned when another garbage collection holds its lock.
var ErrGCRunning = errors.New("another garbage collection is running")

// lockInfo is written into the lock file for people and error messages;
// Since is the start of the holder's current write session (a Saver's
// life), zero while it has none.
type lockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Since   time.Time `json:"since"`
	Command string    `json:"command,omitempty"`
}

// writerLock is an exclusive advisory lock (flock) on a lock file. The
// kernel releases it when the holder dies, so a dead holder's lock is
// broken at once; readers never take it.
type writerLock struct {
	f       *os.File
	command string
	since   time.Time // session start: taken after the lock file names it
}

// acquireLock takes the exclusive lock on path. The holder's session
// start is read from the clock after the lock file records it, so whoever
// reads the file (the collector) sees a time no later than the session's.
func acquireLock(path, command string, now func() time.Time) (*writerLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		var li lockInfo
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			if json.Unmarshal(b, &li) == nil && li.PID != 0 {
				if li.Command == "serve" {
					return nil, fmt.Errorf("%w: the appliance daemon (bes serve, pid %d on %s) holds this repository: work through its API (https://…/api/v1) or stop the daemon first", ErrLocked, li.PID, li.Host)
				}
				return nil, fmt.Errorf("%w: pid %d on %s (%s)", ErrLocked, li.PID, li.Host, li.Command)
			}
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &writerLock{f: f, command: command}
	l.begin(now)
	return l, nil
}

// begin records a write session starting now in the lock file and sets
// l.since after the file names it.
func (l *writerLock) begin(now func() time.Time) {
	l.write(lockInfo{Since: now().UTC()})
	l.since = now()
}

// idle records that no write session runs (the holder keeps the lock):
// the collector need not spare anything for it.
func (l *writerLock) idle() {
	l.write(lockInfo{})
	l.since = time.Time{}
}

func (l *writerLock) write(li lockInfo) {
	li.PID, li.Command = os.Getpid(), l.command
	li.Host, _ = os.Hostname()
	b, _ := json.Marshal(li)
	if err := l.f.Truncate(0); err == nil {
		l.f.WriteAt(b, 0)
	}
}

func (l *writerLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close() // closing drops the flock
	l.f = nil
	return err
}

// activeWriter reads the writer lock file: the session start of a live
// writer, or ok=false when no writer is recorded (or its process is gone).
func activeWriter(path string) (since time.Time, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return time.Time{}, false
	}
	var li lockInfo
	if json.Unmarshal(b, &li) != nil || li.PID == 0 {
		// Being written right now: assume a writer that started at the
		// dawn of time (the collector then sweeps nothing this round).
		return time.Time{}, true
	}
	if host, _ := os.Hostname(); li.Host == host && li.PID != os.Getpid() && unix.Kill(li.PID, 0) == unix.ESRCH {
		return time.Time{}, false // died without releasing (kill -9): stale
	}
	if li.Since.IsZero() {
		return time.Time{}, false // holds the lock, but no write session runs
	}
	return li.Since, true
}

// sharedLock is a flock held shared (readers) on a lock file.
type sharedLock struct{ f *os.File }

func acquireShared(path string) (*sharedLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &sharedLock{f: f}, nil
}

func (l *sharedLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// tryExclusive takes path exclusively without waiting; nil, nil when
// somebody else holds it.
func tryExclusive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
