// Package scratch gives each execution environment its /tmp: a file system
// of its own, of the function's ephemeral storage size (512 MB by default, up
// to 10,240 MB), backed by disk as Lambda's is. A volume is a sparse ext4
// image on a loop device, mounted on a directory of the host that the
// sandbox binds onto the environment's /tmp; when it is full, writes fail
// with ENOSPC, and nothing of it outlives the environment.
//
// Making a volume costs milliseconds (a copy of a template file system, a
// loop device, a mount), so a Pool keeps a few ready of each size it was
// asked for and refills in the background; a cold start only takes one.
//
// The package owns its images, loop devices and mounts, under Config.Dir; it
// knows nothing about environments or their users (the sandbox gives the
// volume's root to the environment's uid).
package scratch

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// DefaultMB is Lambda's default ephemeral storage.
const DefaultMB = 512

// ErrUnsupported is returned where volumes cannot be made (not Linux, not
// root, no loop devices or no mkfs.ext4).
var ErrUnsupported = errors.New("scratch: disk-backed /tmp needs Linux, root, loop devices and mkfs.ext4")

// Config configures a Pool.
type Config struct {
	// Dir holds the images and mount points. Required.
	Dir string
	// Ready is how many volumes of each size the pool keeps ready (default 2).
	Ready int
}

// Volume is one mounted scratch file system.
type Volume struct {
	dir  string // the mount point
	img  string // the image file
	size int    // MB

	closeOnce sync.Once
	closeErr  error
}

// Dir is where the volume is mounted on the host.
func (v *Volume) Dir() string { return v.dir }

// SizeMB is the volume's size.
func (v *Volume) SizeMB() int { return v.size }

// Close unmounts the volume and deletes its image (the loop device detaches
// itself once unmounted).
func (v *Volume) Close() error {
	v.closeOnce.Do(func() { v.closeErr = v.teardown() })
	return v.closeErr
}

// Pool prepares volumes ahead of demand, per size.
//
// Concurrency: cfg and logger are immutable; mu guards ready, making and
// closed.
type Pool struct {
	cfg    Config
	logger *slog.Logger

	mu     sync.Mutex
	ready  map[int][]*Volume // by size
	making map[int]int
	closed bool
	wg     sync.WaitGroup
}

// NewPool checks that volumes can be made here and starts preparing
// volumes of DefaultMB.
func NewPool(cfg Config, logger *slog.Logger) (*Pool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("scratch: a directory is required")
	}
	if cfg.Ready == 0 {
		cfg.Ready = 2
	}
	if err := supported(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	// Volumes of an earlier run whose process died are gone with it.
	Clean(cfg.Dir)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, logger: logger.With("component", "scratch"),
		ready: map[int][]*Volume{}, making: map[int]int{}}
	p.mu.Lock()
	p.fillLocked(DefaultMB)
	p.mu.Unlock()
	return p, nil
}

// Take returns a volume of sizeMB, or makes one now when none is ready.
func (p *Pool) Take(sizeMB int) (*Volume, error) {
	if sizeMB <= 0 {
		sizeMB = DefaultMB
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("scratch: pool closed")
	}
	var v *Volume
	if r := p.ready[sizeMB]; len(r) > 0 {
		v = r[len(r)-1]
		p.ready[sizeMB] = r[:len(r)-1]
	}
	p.fillLocked(sizeMB)
	p.mu.Unlock()
	if v != nil {
		return v, nil
	}
	return create(p.cfg.Dir, sizeMB)
}

func (p *Pool) fillLocked(size int) {
	for !p.closed && len(p.ready[size])+p.making[size] < p.cfg.Ready {
		p.making[size]++
		p.wg.Add(1)
		go p.make(size)
	}
}

func (p *Pool) make(size int) {
	defer p.wg.Done()
	v, err := create(p.cfg.Dir, size)
	p.mu.Lock()
	p.making[size]--
	if err != nil {
		p.mu.Unlock()
		p.logger.Warn("preparing a scratch volume failed", "size_mb", size, "err", err)
		return
	}
	if p.closed {
		p.mu.Unlock()
		_ = v.Close()
		return
	}
	p.ready[size] = append(p.ready[size], v)
	p.mu.Unlock()
}

// Close stops preparing and releases the volumes nobody took.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = map[int][]*Volume{}
	p.mu.Unlock()
	p.wg.Wait()
	var errs []error
	for _, vs := range ready {
		for _, v := range vs {
			errs = append(errs, v.Close())
		}
	}
	return errors.Join(errs...)
}
