//go:build !linux

package relay

// spliceState is empty where splice(2) does not exist; setupSplice never
// creates one.
type spliceState struct{}

func setupSplice(*session) {}

func (*spliceState) run(*dir) runResult { return runFallback }

// Parking needs epoll: a direction is never parked here.

func (d *dir) takeParked()    {}
func (d *dir) parkNow() bool  { return false }
func (d *dir) parkable() bool { return false }
func (d *dir) runParking()    { d.run(); d.s.dirDone() }
func (s *session) unparkAll() {}

func readPoolStats() PoolStats { return PoolStats{} }

func drainPool() {}

type parker struct{}

var theParker parker

func (parker) forget(*dir)      {}
func (parker) enroll(*dir) bool { return false }
