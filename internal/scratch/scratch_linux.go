package scratch

import (
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

	"github.com/shoal-dev/shoal/internal/randid"
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
	name := "v-" + randid.Hex(8)
	v := &Volume{img: filepath.Join(dir, name+".img"), dir: filepath.Join(dir, name), size: sizeMB}
	defer func() {
		if err != nil {
			_ = v.teardown()
		}
	}()
	tmpl, err := template(dir, sizeMB)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(v.img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	defer f.Close()
	if err := copySparse(f, tmpl, int64(sizeMB)<<20); err != nil {
		return nil, fmt.Errorf("scratch: copy the template: %w", err)
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
	return v, nil
}

var templateMu sync.Mutex

// template returns the file system every volume of sizeMB starts as: made
// once with mkfs.ext4 (no journal, as the volume dies with its environment;
// no reserved blocks, as all of it is the function's; inode tables
// initialised lazily; and no lost+found, so /tmp starts empty), then copied
// for each volume, holes and all, which costs a small part of a mkfs.
func template(dir string, sizeMB int) (*os.File, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	path := filepath.Join(dir, "template-"+strconv.Itoa(sizeMB)+".ext4")
	if f, err := os.Open(path); err == nil {
		return f, nil
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	err = f.Truncate(int64(sizeMB) << 20)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("scratch: size the template: %w", err)
	}
	mkfs, err := mkfsPath()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-O", "^has_journal",
		"-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0", tmp).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("scratch: mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := removeLostFound(dir, tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	return os.Open(path)
}

// removeLostFound mounts a fresh image once to delete its lost+found.
func removeLostFound(dir, img string) error {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer f.Close()
	mnt, err := os.MkdirTemp(dir, "template-")
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer os.Remove(mnt)
	loop, err := attach(f)
	if err != nil {
		return err
	}
	defer loop.Close()
	if err := unix.Mount(loop.Name(), mnt, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("scratch: mount the template: %w", err)
	}
	rmErr := os.Remove(filepath.Join(mnt, "lost+found"))
	if err := unix.Unmount(mnt, 0); err != nil {
		return fmt.Errorf("scratch: unmount the template: %w", err)
	}
	if rmErr != nil {
		return fmt.Errorf("scratch: %w", rmErr)
	}
	return nil
}

// copySparse copies the data of src into dst (both size bytes), leaving the
// holes holes.
func copySparse(dst, src *os.File, size int64) error {
	defer src.Close()
	if err := dst.Truncate(size); err != nil {
		return err
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	var off int64
	for off < size {
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // no data past off
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(sfd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		for n := data; n < hole; {
			in, out := n, n
			w, err := unix.CopyFileRange(sfd, &in, dfd, &out, int(hole-n), 0)
			if err != nil {
				return err
			}
			if w == 0 {
				return errors.New("short copy")
			}
			n += int64(w)
		}
		off = hole
	}
	return nil
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

// Clean removes what a process that died left in the pool directory dir:
// its volumes' mounts, images and mount points.
func Clean(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "template-") && !strings.HasSuffix(e.Name(), ".ext4") {
			_ = unix.Unmount(filepath.Join(dir, e.Name()), unix.MNT_DETACH)
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
			continue
		}
		name, ok := strings.CutSuffix(e.Name(), ".img")
		if !ok {
			continue
		}
		v := &Volume{img: filepath.Join(dir, e.Name()), dir: filepath.Join(dir, name)}
		_ = v.teardown()
	}
}
