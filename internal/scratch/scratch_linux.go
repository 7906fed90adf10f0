package scratch

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// supported checks once for root, the loop control device and mkfs.ext4.
var supported = sync.OnceValue(func() error {
	if os.Geteuid() != 0 {
		return ErrUnsupported
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if _, err := mkfsPath(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return nil
})

func mkfsPath() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mkfs.ext4 not found")
}

// create makes, attaches and mounts one volume of sizeMB under dir.
func create(dir string, sizeMB int) (_ *Volume, err error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	name := "v-" + hex.EncodeToString(id[:])
	v := &Volume{img: filepath.Join(dir, name+".img"), dir: filepath.Join(dir, name), size: sizeMB}
	defer func() {
		if err != nil {
			_ = v.teardown()
		}
	}()
	f, err := os.OpenFile(v.img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(sizeMB) << 20); err != nil {
		return nil, fmt.Errorf("scratch: size the image: %w", err)
	}
	mkfs, err := mkfsPath()
	if err != nil {
		return nil, err
	}
	// No journal (the volume dies with its environment), no reserved blocks
	// (all of it is the function's), inode tables initialised lazily.
	out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-O", "^has_journal",
		"-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0", v.img).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("scratch: mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Mkdir(v.dir, 0o700); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	loop, err := attach(f)
	if err != nil {
		return nil, err
	}
	defer loop.Close()
	if err := unix.Mount(loop.Name(), v.dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return nil, fmt.Errorf("scratch: mount %s: %w", loop.Name(), err)
	}
	// An empty /tmp, as on Lambda.
	_ = os.Remove(filepath.Join(v.dir, "lost+found"))
	return v, nil
}

// attach binds the image to a free loop device, which detaches itself when
// its last user (the mount) lets go.
func attach(img *os.File) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	defer ctl.Close()
	for attempt := 0; attempt < 32; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("scratch: free loop device: %w", err)
		}
		dev, err := os.OpenFile("/dev/loop"+strconv.Itoa(n), os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("scratch: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(img.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:], img.Name())
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, dev.Fd(), unix.LOOP_CONFIGURE, uintptr(unsafe.Pointer(&cfg)))
		if errno == 0 {
			return dev, nil
		}
		dev.Close()
		if errno != unix.EBUSY {
			return nil, fmt.Errorf("scratch: configure /dev/loop%d: %w", n, errno)
		}
		// Another process took it between GET_FREE and CONFIGURE.
	}
	return nil, errors.New("scratch: no free loop device")
}

// teardown unmounts the volume and removes its image and mount point.
func (v *Volume) teardown() error {
	var errs []error
	if err := unix.Unmount(v.dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("scratch: unmount %s: %w", v.dir, err))
	}
	if err := os.Remove(v.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("scratch: %w", err))
	}
	if err := os.Remove(v.img); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("scratch: %w", err))
	}
	return errors.Join(errs...)
}

// cleanDir removes what a process that died left in dir: its mounts, images
// and mount points.
func cleanDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".img")
		if !ok {
			continue
		}
		v := &Volume{img: filepath.Join(dir, e.Name()), dir: filepath.Join(dir, name)}
		_ = v.teardown()
	}
}
