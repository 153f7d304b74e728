// Package fileservice serves the guest's file requests on the host: its files beneath
// the directories it was granted, its private /tmp and $HOME, and the programs it starts.
package fileservice
