package file

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// maxFooter bounds the footer a part may declare before it is read: a
// staged part has a few row groups, so its footer is kilobytes; a larger
// claim is a corrupt file, not an allocation to make.
const maxFooter = 64 << 20

var parquetMagic = []byte("PAR1")

// readFooter reads and decodes the footer of the Parquet file f of size n.
func parquetFooter(f io.ReaderAt, n int64) (*format.FileMetaData, error) {
	if n < 12 {
		return nil, fmt.Errorf("%d bytes is too small for a Parquet file", n)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], n-8); err != nil {
		return nil, err
	}
	if !bytes.Equal(tail[4:], parquetMagic) {
		return nil, errors.New("not a Parquet file (no PAR1 at the end)")
	}
	size := int64(binary.LittleEndian.Uint32(tail[:4]))
	if size > maxFooter || size > n-12 {
		return nil, fmt.Errorf("footer of %d bytes in a file of %d", size, n)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, n-8-size); err != nil {
		return nil, err
	}
	md := new(format.FileMetaData)
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), buf, md); err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	return md, nil
}

// chunkRange is the byte range of a row group's column chunks in its file.
func chunkRange(rg *format.RowGroup) (lo, hi int64, err error) {
	lo, hi = -1, -1
	for i := range rg.Columns {
		md := &rg.Columns[i].MetaData
		start := md.DataPageOffset
		if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
			start = md.DictionaryPageOffset
		}
		if md.IndexPageOffset > 0 && md.IndexPageOffset < start {
			start = md.IndexPageOffset
		}
		end := start + md.TotalCompressedSize
		if start < 4 || md.TotalCompressedSize < 0 {
			return 0, 0, fmt.Errorf("column chunk at offset %d of %d bytes", start, md.TotalCompressedSize)
		}
		if lo < 0 || start < lo {
			lo = start
		}
		if end > hi {
			hi = end
		}
	}
	return lo, hi, nil
}

// joinParquet writes the row groups of parts, in order, into one Parquet
// file at path, copying their column chunks byte for byte (no decoding, no
// re-encoding) and writing one footer over all of them. Every part must
// have the same schema. Page indexes and bloom filters of the parts are
// not carried over (they are optional; readers do without). Memory is the
// parts' footers plus a copy buffer, whatever the data's size. It returns
// the rows written.
func joinParquet(path string, parts []string) (int64, error) {
	out, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	if _, err := w.Write(parquetMagic); err != nil {
		return 0, err
	}
	pos := int64(len(parquetMagic))
	var joined *format.FileMetaData
	for _, p := range parts {
		err := func() error {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			md, err := parquetFooter(f, st.Size())
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if joined == nil {
				joined = &format.FileMetaData{Version: md.Version, Schema: md.Schema, KeyValueMetadata: md.KeyValueMetadata,
					CreatedBy: md.CreatedBy, ColumnOrders: md.ColumnOrders}
			} else if !reflect.DeepEqual(md.Schema, joined.Schema) {
				return fmt.Errorf("%s: its schema differs from the first part's", p)
			}
			for i := range md.RowGroups {
				rg := &md.RowGroups[i]
				lo, hi, err := chunkRange(rg)
				if err != nil {
					return fmt.Errorf("%s: row group %d: %w", p, i, err)
				}
				if hi > st.Size()-8 {
					return fmt.Errorf("%s: row group %d ends at %d, past the data", p, i, hi)
				}
				if _, err := io.Copy(w, io.NewSectionReader(f, lo, hi-lo)); err != nil {
					return err
				}
				shift := pos - lo
				for c := range rg.Columns {
					cc := &rg.Columns[c]
					cc.FileOffset += shift
					cm := &cc.MetaData
					cm.DataPageOffset += shift
					if cm.DictionaryPageOffset > 0 {
						cm.DictionaryPageOffset += shift
					}
					if cm.IndexPageOffset > 0 {
						cm.IndexPageOffset += shift
					}
					cm.BloomFilterOffset, cm.BloomFilterLength = 0, 0
					cc.OffsetIndexOffset, cc.OffsetIndexLength = 0, 0
					cc.ColumnIndexOffset, cc.ColumnIndexLength = 0, 0
				}
				if rg.FileOffset > 0 {
					rg.FileOffset += shift
				}
				if len(joined.RowGroups) <= math.MaxInt16 {
					rg.Ordinal = int16(len(joined.RowGroups))
				}
				joined.RowGroups = append(joined.RowGroups, *rg)
				joined.NumRows += rg.NumRows
				pos += hi - lo
			}
			return nil
		}()
		if err != nil {
			return 0, err
		}
	}
	if joined == nil {
		return 0, errors.New("no parts to join")
	}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), joined)
	if err != nil {
		return 0, err
	}
	var size [4]byte
	binary.LittleEndian.PutUint32(size[:], uint32(len(footer)))
	for _, b := range [][]byte{footer, size[:], parquetMagic} {
		if _, err := w.Write(b); err != nil {
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return joined.NumRows, out.Sync()
}
