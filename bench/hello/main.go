// Command hello is the native baseline for bench/boot: a Go program that prints and exits.
package main

import "fmt"

func main() { fmt.Println("hello") }
