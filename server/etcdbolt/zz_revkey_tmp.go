package etcdbolt

// TEMPORARY until the lead's RevisionKey/ParseRevisionKey land.

import (
	"encoding/binary"
	"fmt"
)

func revisionKey(dst []byte, main, sub int64, tomb bool) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(main))
	dst = append(dst, '_')
	dst = binary.BigEndian.AppendUint64(dst, uint64(sub))
	if tomb {
		dst = append(dst, 't')
	}
	return dst
}

func parseRevisionKey(b []byte) (main, sub int64, tomb bool, err error) {
	if (len(b) != 17 && len(b) != 18) || b[8] != '_' || (len(b) == 18 && b[17] != 't') {
		return 0, 0, false, fmt.Errorf("bad revision key %x", b)
	}
	return int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[9:])), len(b) == 18, nil
}
