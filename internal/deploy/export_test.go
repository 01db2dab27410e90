package deploy

// DriversForTest are shipbot's own kinds of target, for the tests that
// parse targets files and trigger through them. This package cannot
// import the drivers (they import it); drivers_test.go (package
// deploy_test) can, and sets this.
var DriversForTest *Registry
