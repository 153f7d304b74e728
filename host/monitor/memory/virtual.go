package memory

import "fmt"

// Page-table entry bits the walk reads.
const (
	PTEPresent  = 1 << 0
	PTEWritable = 1 << 1
	PTEUser     = 1 << 2
	PTELarge    = 1 << 7 // a 2 MiB page, in a page-directory entry

	pteAddr = 0x000ffffffffff000
)

// Virtual is guest memory as the guest's own page tables map it (four levels, 2 MiB pages
// included). The guest writes those tables, so every entry the walk reads and every
// address it yields is bounds-checked like any other guest address.
type Virtual struct {
	g   *Guest
	cr3 uint64
}

// Virtual returns guest memory through the page tables rooted at cr3.
func (g *Guest) Virtual(cr3 uint64) Virtual { return Virtual{g: g, cr3: cr3} }

// Translate returns the guest-physical address va maps to and the permissions the walk
// grants (PTEWritable and PTEUser where every level grants them).
func (v Virtual) Translate(va uint64) (gpa, perm uint64, err error) {
	table := v.cr3 & pteAddr
	perm = PTEWritable | PTEUser
	for level, shift := 0, uint(39); level < 4; level, shift = level+1, shift-9 {
		e, err := v.g.Uint64(table + (va>>shift&511)*8)
		if err != nil {
			return 0, 0, err
		}
		if e&PTEPresent == 0 {
			return 0, 0, fmt.Errorf("guest address %#x is not mapped", va)
		}
		perm &= e
		if level == 2 && e&PTELarge != 0 {
			return e&pteAddr&^(1<<21-1) | va&(1<<21-1), perm, nil
		}
		table = e & pteAddr
	}
	return table | va&0xfff, perm, nil
}

// Read copies guest memory at va into b.
func (v Virtual) Read(va uint64, b []byte) error { return v.access(va, b, false) }

// Write copies b into guest memory at va.
func (v Virtual) Write(va uint64, b []byte) error { return v.access(va, b, true) }

func (v Virtual) access(va uint64, b []byte, write bool) error {
	for len(b) > 0 {
		gpa, _, err := v.Translate(va)
		if err != nil {
			return err
		}
		n := min(uint64(len(b)), 4096-va&0xfff)
		mem, err := v.g.Slice(gpa, n)
		if err != nil {
			return err
		}
		if write {
			copy(mem, b[:n])
		} else {
			copy(b[:n], mem)
		}
		b, va = b[n:], va+n
	}
	return nil
}
