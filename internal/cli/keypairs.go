package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

func (a *app) keyPairCmd() *cobra.Command {
	var owner string
	ownerFlag := func(c *cobra.Command, usage string) *cobra.Command {
		c.Flags().StringVar(&owner, "owner", "", usage)
		return c
	}
	cmd := &cobra.Command{Use: "keypair", Short: "Manage SSH key pairs: public keys for guests (vm create --key-name)"}
	cmd.AddCommand(a.keyPairCreateCmd(),
		ownerFlag(&cobra.Command{
			Use:   "list",
			Short: "List key pairs: your own (an admin: every token's)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ks, err := a.client().KeyPairs(cmd.Context(), owner)
				if err != nil {
					return err
				}
				if a.structured() {
					return a.print(ks)
				}
				return writeKeyPairs(a.out, ks, time.Now())
			},
		}, "only this token's key pairs, by its ID (an admin's choice)"),
		ownerFlag(&cobra.Command{
			Use:   "show NAME",
			Short: "Show one of your key pairs",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				k, err := a.client().KeyPair(cmd.Context(), args[0], owner)
				if err != nil {
					return err
				}
				return a.printKeyPair(k)
			},
		}, "another token's key pair, by its ID (an admin's)"),
		ownerFlag(&cobra.Command{
			Use:   "delete NAME",
			Short: "Delete one of your key pairs (VMs made with it keep its key)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := a.client().DeleteKeyPair(cmd.Context(), args[0], owner); err != nil {
					return err
				}
				if !a.structured() {
					fmt.Fprintf(a.out, "key pair %s deleted\n", args[0])
				}
				return nil
			},
		}, "another token's key pair, by its ID (an admin's)"))
	return cmd
}

func (a *app) keyPairCreateCmd() *cobra.Command {
	var req api.CreateKeyPairRequest
	var publicFile, privateFile string
	cmd := &cobra.Command{
		Use:   "create NAME [--public-key-file FILE]",
		Short: "Import an SSH public key as a key pair, or generate one",
		Long: `Import an SSH public key as a key pair, as Nova keeps them: 'vm create
--key-name NAME' puts it in the guest's NoCloud seed, and cloud-init adds
it to the default user's authorized_keys. A key pair is your token's:
other tokens neither see nor use it.

--public-key-file is the public key (a .pub file, - for stdin):
ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521. Without it godwit
generates an ed25519 key pair and prints its private key (or writes it
to --private-key-file, mode 0600) this once: godwit keeps no copy.`,
		Example: `  godwit keypair create laptop --public-key-file ~/.ssh/id_ed25519.pub
  godwit keypair create ci --private-key-file ci.key
  godwit keypair create tmp > tmp.key && chmod 600 tmp.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if publicFile != "" && privateFile != "" {
				return usagef("--private-key-file is for a generated key pair: leave out --public-key-file, or --private-key-file")
			}
			req.Name = args[0]
			if publicFile != "" {
				b, err := readSmall(publicFile, api.MaxPublicKeyBytes, cmd.InOrStdin())
				if err != nil {
					return err
				}
				req.PublicKey = string(b)
			}
			if privateFile != "" {
				if _, err := os.Stat(privateFile); err == nil {
					return usagef("--private-key-file %s exists; godwit does not overwrite a key", privateFile)
				}
			}
			k, err := a.client().CreateKeyPair(cmd.Context(), req)
			if err != nil {
				return err
			}
			if k.PrivateKey != "" && privateFile != "" {
				if err := writeNew(privateFile, []byte(k.PrivateKey)); err != nil {
					return fmt.Errorf("key pair %s was created, and its private key could not be written (delete the key pair and create it again): %w", k.Name, err)
				}
				k.PrivateKey = ""
			}
			if a.structured() {
				return a.print(k)
			}
			if k.PrivateKey != "" {
				// The private key alone on stdout, as openstack keypair
				// create prints it: redirect it to a file.
				fmt.Fprint(a.out, k.PrivateKey)
				fmt.Fprintf(a.errOut, "key pair %s created (%s); its private key is printed above, this once: godwit keeps no copy\n", k.Name, k.FingerprintSHA256)
				return nil
			}
			return a.printKeyPair(k.KeyPair)
		},
	}
	f := cmd.Flags()
	f.StringVar(&publicFile, "public-key-file", "", "the OpenSSH public key to import (a .pub file; - for stdin); without it a key pair is generated")
	f.StringVar(&privateFile, "private-key-file", "", "write a generated key pair's private key to this new file (mode 0600) rather than to stdout")
	f.StringVar(&req.Owner, "owner", "", "make the key pair another token's, by its ID (an admin's)")
	return cmd
}

// readSmall reads a file (- for stdin) of at most limit bytes.
func readSmall(path string, limit int, stdin io.Reader) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read the public key: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read the public key: %w", err)
	}
	if len(b) > limit {
		return nil, usagef("%s is larger than %d bytes: give a public key (the .pub file)", path, limit)
	}
	return b, nil
}

// writeNew writes b to a file that must not exist yet, mode 0600.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; godwit does not overwrite a key", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *app) printKeyPair(k api.KeyPair) error {
	if a.structured() {
		return a.print(k)
	}
	return fields(a.out, "Name", k.Name, "Owner", k.Owner, "Project", k.Project, "Type", k.Type,
		"Fingerprint", k.Fingerprint, "SHA256", k.FingerprintSHA256, "Public key", k.PublicKey, "Created", timestamp(k.CreatedAt))
}

func writeKeyPairs(w io.Writer, ks []api.KeyPair, now time.Time) error {
	t := newTable(w, "NAME", "OWNER", "PROJECT", "FINGERPRINT", "AGE")
	for _, k := range ks {
		t.row(k.Name, k.Owner, k.Project, k.FingerprintSHA256, age(k.CreatedAt, now))
	}
	return t.flush()
}
