package e2e

import (
	"os"
	"testing"

	"github.com/pithvm/pith/test/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}
