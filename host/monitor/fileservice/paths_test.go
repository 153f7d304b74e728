package fileservice

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProjectOf(t *testing.T) {
	top := t.TempDir()
	nested := filepath.Join(top, "a", "b")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := projectOf(nested); got != nested {
		t.Errorf("no go.mod or .git: projectOf = %s, want the directory itself", got)
	}
	os.Mkdir(filepath.Join(top, ".git"), 0o755)
	if got := projectOf(nested); got != top {
		t.Errorf(".git above: projectOf = %s, want %s", got, top)
	}
	os.WriteFile(filepath.Join(top, "a", "go.mod"), []byte("module a\n"), 0o644)
	if got, want := projectOf(nested), filepath.Join(top, "a"); got != want {
		t.Errorf("go.mod nearer than .git: projectOf = %s, want %s", got, want)
	}
}
