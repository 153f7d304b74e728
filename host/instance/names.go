package instance

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Words of the random names given to unikernels started without --name, as adjective_noun.
var (
	adjectives = []string{"agile", "bold", "brave", "bright", "calm", "clever", "cool", "crisp",
		"eager", "fair", "fast", "fond", "gentle", "glad", "grand", "happy", "hardy", "keen",
		"kind", "lively", "lucid", "merry", "mild", "neat", "nimble", "noble", "plucky", "proud",
		"quick", "quiet", "rapid", "ready", "sharp", "shy", "silent", "sleek", "smart", "snug",
		"steady", "stoic", "sunny", "swift", "tidy", "trusty", "vivid", "warm", "wise", "witty", "young", "zesty"}
	nouns = []string{"acorn", "badger", "beacon", "birch", "bison", "brook", "cedar", "comet",
		"coral", "crane", "delta", "ember", "falcon", "fern", "finch", "fjord", "gecko", "glacier",
		"harbor", "heron", "ibis", "island", "jaguar", "kestrel", "lark", "lynx", "maple", "meadow",
		"nebula", "otter", "owl", "panda", "pebble", "pine", "quartz", "raven", "reef", "river",
		"sparrow", "spruce", "summit", "tiger", "tundra", "valley", "walrus", "willow", "wren", "yak", "zebra", "zephyr"}
)

// RandomName is a readable name, adjective_noun; with digits, adjective_noun_N (for when
// the plain ones keep colliding).
func RandomName(digits bool) string {
	var b [8]byte
	rand.Read(b[:])
	r := binary.LittleEndian.Uint64(b[:])
	name := adjectives[r%uint64(len(adjectives))] + "_" + nouns[r/64%uint64(len(nouns))]
	if digits {
		name += fmt.Sprintf("_%d", r/4096%1000)
	}
	return name
}
