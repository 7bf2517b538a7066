package source

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// storePack stores a received pack in dst after checking, from the pack's
// object headers, that no object inflates past lim.MaxFileBytes. A pack is
// compressed: 512 MiB of zeros travel as a few hundred kB, and go-git's
// indexer inflates every object in memory. So the pack (already bounded by
// MaxPackBytes as it arrives) goes to a temporary file first; its headers
// are read (a whole object's size; for a delta, the size of the object it
// makes, from the delta's own header); only then is it indexed. The pack
// does not say which path an object sits at, so over a network transport
// an object over the bound anywhere in the pack refuses the fetch.
func storePack(dst *filesystem.Storage, r io.Reader, lim Limits) error {
	// The temporary file sits beside the cache it is for (the state dir),
	// so an agent in a FROM-scratch image, which has no /tmp, can fetch;
	// os.TempDir is the fallback for a cache that is not on disk.
	tmp, err := os.CreateTemp(dst.Filesystem().Root(), "reconciler-pack-*")
	if err != nil {
		tmp, err = os.CreateTemp("", "reconciler-pack-*")
	}
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, r)
	if err != nil {
		return err
	}
	if n > 0 {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := checkPack(tmp, lim.MaxFileBytes); err != nil {
			return err
		}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return packfile.UpdateObjectStorage(dst, tmp)
}

// checkPack reads the object headers of the pack in r and refuses one
// that inflates past limit. Damage is left for the indexer to report.
func checkPack(r io.Reader, limit int64) error {
	sc := packfile.NewScanner(bufio.NewReader(r))
	_, count, err := sc.Header()
	if err != nil {
		return nil
	}
	for i := uint32(0); i < count; i++ {
		h, err := sc.NextObjectHeader()
		if err != nil {
			return nil
		}
		size := h.Length
		if h.Type.IsDelta() {
			if size > limit {
				return packLimit(h.Type.String(), size, limit)
			}
			rc, err := sc.ReadObject()
			if err != nil {
				return nil
			}
			br := bufio.NewReader(io.LimitReader(rc, 32))
			_, err1 := deltaVarint(br) // the base's size
			target, err2 := deltaVarint(br)
			rc.Close()
			if err1 != nil || err2 != nil {
				return nil
			}
			size = target
		}
		if size > limit {
			return packLimit(h.Type.String(), size, limit)
		}
	}
	return nil
}

func packLimit(kind string, size, limit int64) error {
	return &LimitError{Bound: BoundFileBytes, What: fmt.Sprintf("an object of the pack received (%s)", kind), Size: size, Limit: limit}
}

// deltaVarint reads one size of a delta's header: 7 bits a byte, least
// significant first.
func deltaVarint(r io.ByteReader) (int64, error) {
	var v int64
	for shift := uint(0); shift < 63; shift += 7 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= int64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("delta size too long")
}
