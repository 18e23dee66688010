package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "results.json")
	for _, content := range []string{"first", "second, longer"} {
		if err := Write(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Fatalf("read %q, want %q", b, content)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the target", len(ents))
	}
	if err := Write(filepath.Join(dir, "missing", "x"), []byte("x")); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestWriteJSONIsIndentedAndKeepsHTMLCharacters(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(p, map[string]string{"k": "<a&b>"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "{\n  \"k\": \"<a&b>\"\n}\n" {
		t.Fatalf("wrote %q", b)
	}
	if err := WriteJSON(p, func() {}); err == nil {
		t.Fatal("a value JSON cannot encode was written")
	}
}
