package sessionenv

// Values of StoreType: which device store the session opens.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// StoreClassOwnedElsewhere is the session's store failure class (status.connection.failureCode
// in state StoreError) for a store that belongs to another WhatsAppConnection; the controller
// reports it as Conflict/StoreOwnedElsewhere.
const StoreClassOwnedElsewhere = "OwnedByAnotherResource"
