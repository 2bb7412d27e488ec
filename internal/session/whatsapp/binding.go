package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/store/sqlstore"

	"github.com/waoperator/whatsapp-operator/internal/session"
)

// One device store serves one WhatsAppConnection. Two resources whose DSNs name the same
// database would otherwise load the same device keys (whatsmeow loads "the first device"), fight
// over one WhatsApp session, and a logout of one would wipe the other. So the store records the
// resource it belongs to, in a table of its own next to whatsmeow's, on first use; a session of
// any other resource refuses to start on it (StoreOwnedElsewhere). The owner is the namespace and
// name, not the UID: a resource deleted without logout and created again under the same name
// finds its device, as a person expects.

// ownerTable holds at most one row: the resource the store belongs to.
const ownerTable = "waoperator_store_owner"

// StoreOwner names the WhatsAppConnection a store belongs to.
type StoreOwner struct {
	Namespace, Name string
}

func (o StoreOwner) String() string { return o.Namespace + "/" + o.Name }

// bindStore records owner in the store, or refuses a store that belongs to another resource or
// holds more than one device. Portable SQL: SQLite and Postgres both run it.
func bindStore(ctx context.Context, db *sql.DB, c *sqlstore.Container, owner StoreOwner) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+ownerTable+` (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		namespace TEXT NOT NULL,
		name TEXT NOT NULL)`); err != nil {
		return safeStoreError(err)
	}
	// First claimant wins; a concurrent one reads the winner below.
	if _, err := db.ExecContext(ctx, `INSERT INTO `+ownerTable+` (id, namespace, name) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
		owner.Namespace, owner.Name); err != nil {
		return safeStoreError(err)
	}
	var got StoreOwner
	if err := db.QueryRowContext(ctx, `SELECT namespace, name FROM `+ownerTable+` WHERE id = 1`).Scan(&got.Namespace, &got.Name); err != nil {
		return safeStoreError(err)
	}
	if got != owner {
		who := "a WhatsAppConnection in another namespace"
		if got.Namespace == owner.Namespace {
			who = fmt.Sprintf("WhatsAppConnection %s", got.Name)
		}
		return session.NewStoreError(session.StoreOwnedElsewhere, fmt.Sprintf(
			"the device store belongs to %s: two resources must not share one store database. "+
				"Give this resource a database of its own, or, if that resource is gone, delete the row of table %s", who, ownerTable), nil)
	}
	devices, err := c.GetAllDevices(ctx)
	if err != nil {
		return safeStoreError(err)
	}
	if len(devices) > 1 {
		return session.NewStoreError(session.StoreHoldsOtherDevices, fmt.Sprintf(
			"the device store holds %d devices; a session uses a store with one device at most", len(devices)), nil)
	}
	return nil
}

// safeStoreError classifies a driver error of the binding queries.
func safeStoreError(err error) error {
	var se *session.StoreError
	if errors.As(err, &se) {
		return se
	}
	return session.NewStoreError(session.StoreUnavailable, "the device store's owner record cannot be read or written", err)
}

// releaseStore deletes owner's record, so that another resource may use the emptied store.
func releaseStore(ctx context.Context, db *sql.DB, owner StoreOwner) error {
	if owner == (StoreOwner{}) {
		return nil
	}
	_, err := db.ExecContext(ctx, `DELETE FROM `+ownerTable+` WHERE id = 1 AND namespace = $1 AND name = $2`, owner.Namespace, owner.Name)
	if err != nil {
		return safeStoreError(err)
	}
	return nil
}
