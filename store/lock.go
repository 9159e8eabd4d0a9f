package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned when another writer holds the repository lock.
var ErrLocked = errors.New("repository is locked by another writer")

// lockInfo is written into the lock file for people and error messages.
type lockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Since   time.Time `json:"since"`
	Command string    `json:"command,omitempty"`
}

// writerLock is an exclusive advisory lock (flock) on the repository's lock
// file. The kernel releases it when the holder dies, so a dead holder's lock
// is broken at once; readers never take it.
type writerLock struct{ f *os.File }

func acquireLock(path, command string, now time.Time) (*writerLock, error) {
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
				return nil, fmt.Errorf("%w: pid %d on %s since %s (%s)", ErrLocked, li.PID, li.Host, li.Since.Format(time.RFC3339), li.Command)
			}
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(lockInfo{PID: os.Getpid(), Host: host, Since: now.UTC(), Command: command})
	if err := f.Truncate(0); err == nil {
		f.WriteAt(b, 0)
	}
	return &writerLock{f: f}, nil
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
