package store

import (
	"encoding/binary"
	"hash/fnv"
	"maps"
	"os"
	"slices"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// The bbolt file format, as much as the page scan needs (go.etcd.io/bbolt/internal/common).
// Integers are in the machine's byte order; every platform this project runs on is little-endian.
const (
	pageHeaderSize   = 16 // id uint64, flags uint16, count uint16, overflow uint32
	leafElementSize  = 16 // flags, pos, ksize, vsize uint32; pos is from the element itself
	bucketHeaderSize = 16 // root page id uint64 (0: the bucket's page follows inline), sequence uint64
	leafPageFlag     = 0x02
	bucketLeafFlag   = 0x01
	metaMagic        = 0xED0CDAED
)

var le = binary.LittleEndian

// scanPages reads every leaf page of a bbolt file on its own, trusting nothing but bounds: it
// finds the records still readable when bbolt's index is not. A record counts only if it
// decodes to a Definition whose ID is its key. Of several copies of an ID (bbolt leaves old
// copies in freed pages) the newest wins. Keys of records that did not decode are returned as
// lost, unless a good copy was found.
func scanPages(data []byte) (defs []Definition, lost []string) {
	found := map[string]Definition{}
	bad := map[string]bool{}
	add := func(k, v []byte) {
		var d Definition
		if msgpack.Unmarshal(v, &d) == nil && d.ID == string(k) {
			if old, ok := found[d.ID]; !ok || newest(d, old) {
				found[d.ID] = d
			}
			return
		}
		if printable(k) {
			bad[string(k)] = true
		}
	}
	ps := pageSize(data)
	for off := 0; off+pageHeaderSize <= len(data); off += ps {
		if le.Uint16(data[off+8:]) != leafPageFlag {
			continue
		}
		end := min(len(data), off+(int(le.Uint32(data[off+12:]))+1)*ps)
		scanLeaf(data[off:end], true, add)
	}
	for k := range bad {
		if _, ok := found[k]; !ok {
			lost = append(lost, k)
		}
	}
	slices.Sort(lost)
	defs = slices.Collect(maps.Values(found))
	sortDefs(defs)
	return defs, lost
}

// scanLeaf calls add for each key/value element of the leaf page p; with nested, it also reads
// inline buckets (a small bucket's one page stored in its parent's value).
func scanLeaf(p []byte, nested bool, add func(k, v []byte)) {
	if len(p) < pageHeaderSize || le.Uint16(p[8:]) != leafPageFlag {
		return
	}
	count := int(le.Uint16(p[10:]))
	for i := range count {
		e := pageHeaderSize + i*leafElementSize
		if e+leafElementSize > len(p) {
			return
		}
		flags := le.Uint32(p[e:])
		ks := uint64(e) + uint64(le.Uint32(p[e+4:]))
		ke := ks + uint64(le.Uint32(p[e+8:]))
		ve := ke + uint64(le.Uint32(p[e+12:]))
		if ve > uint64(len(p)) {
			continue
		}
		k, v := p[ks:ke], p[ke:ve]
		if flags&bucketLeafFlag == 0 {
			add(k, v)
		} else if nested && len(v) > bucketHeaderSize && le.Uint64(v) == 0 {
			scanLeaf(v[bucketHeaderSize:], false, add)
		}
	}
}

// pageSize reads the page size from a valid meta page (page 0, else page 1 at each possible
// size), falling back to the OS page size, which is what bbolt creates files with.
func pageSize(data []byte) int {
	meta := func(off int) int {
		if off+pageHeaderSize+12 > len(data) || le.Uint32(data[off+pageHeaderSize:]) != metaMagic {
			return 0
		}
		ps := int(le.Uint32(data[off+pageHeaderSize+8:]))
		if ps < 1024 || ps > 1<<24 || ps&(ps-1) != 0 || (off != 0 && off != ps) {
			return 0
		}
		return ps
	}
	if ps := meta(0); ps > 0 {
		return ps
	}
	for ps := 1024; ps <= 1<<24; ps <<= 1 {
		if meta(ps) == ps {
			return ps
		}
	}
	return os.Getpagesize()
}

func printable(k []byte) bool {
	if len(k) == 0 || len(k) > 256 || !utf8.Valid(k) {
		return false
	}
	for _, r := range string(k) {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// headerSize returns the file size that the newest valid meta page of the bbolt file at path
// declares (its page count times its page size); ok is false when no meta page is valid, which
// bbolt reports itself.
func headerSize(path string) (size int64, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, 0)
	ps := pageSize(buf[:n])
	var txid uint64
	for _, off := range []int64{0, int64(ps)} {
		n, _ := f.ReadAt(buf, off)
		m, valid := meta(buf[:n])
		if valid && (!ok || m.txid > txid) {
			size, txid, ok = int64(m.pgid)*int64(m.pageSize), m.txid, true
		}
	}
	return size, ok
}

type metaPage struct {
	pageSize   uint32
	pgid, txid uint64
}

// meta decodes a meta page (page header, then magic, version, page size, flags, root bucket,
// freelist, pgid, txid, checksum) and validates it as bbolt does: magic, version 2, FNV-64a of
// the fields before the checksum.
func meta(p []byte) (m metaPage, valid bool) {
	const size = 64
	if len(p) < pageHeaderSize+size {
		return m, false
	}
	b := p[pageHeaderSize : pageHeaderSize+size]
	if le.Uint32(b) != metaMagic || le.Uint32(b[4:]) != 2 {
		return m, false
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != le.Uint64(b[56:]) {
		return m, false
	}
	return metaPage{pageSize: le.Uint32(b[8:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}, true
}
