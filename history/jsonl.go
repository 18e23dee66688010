package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxLine bounds one JSON line; a set final read of many elements is the
// largest event a workload writes.
const maxLine = 64 << 20

// WriteJSONL writes events to w as JSON lines, one Event per line, in the
// order given.
func WriteJSONL(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("write history event #%d: %w", e.Index, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

// ReadJSONL reads JSON-lines events from r. Blank lines are skipped; any
// other line that is not an Event, or whose type is not one of the four
// event types, is an error naming its line number. Unknown fields are
// ignored, so newer files stay readable. It does not check that the events
// form a well-paired history: Operations does.
func ReadJSONL(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var events []Event
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		if !e.Type.Valid() {
			return nil, fmt.Errorf("history line %d: event type %q: want invoke, ok, fail or info", line, e.Type)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("history line %d: longer than %d bytes: %w", line+1, maxLine, err)
		}
		return nil, fmt.Errorf("history line %d: %w", line+1, err)
	}
	return events, nil
}

// Save writes events as JSON lines to path, atomically: it writes a
// temporary file in the same directory and renames it into place.
func Save(path string, events []Event) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save history %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := WriteJSONL(f, events); err != nil {
		return fmt.Errorf("save history %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("save history %s: chmod: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save history %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save history %s: close: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save history %s: %w", path, err)
	}
	return nil
}

// Load reads a JSON-lines history from path.
func Load(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	defer f.Close()
	events, err := ReadJSONL(f)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return events, nil
}
