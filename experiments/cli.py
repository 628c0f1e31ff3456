"""What every entry point shares: the one-line error, exit codes and the
`--config.x=y` overrides."""

import sys

from lbie_tf.core import errors

# Exit status of a command that was given bad input. 2 is the Unix convention
# for usage errors (argparse and absl flag parsing use it too), so scripts can
# tell "you passed something wrong" apart from a crash (1) or success (0).
EXIT_USER_ERROR = 2


def exit_on_user_error(function, *args, **kwargs):
    """Calls `function`; a `UserError` becomes `error: <message>` on stderr and
    exit status `EXIT_USER_ERROR`. Any other exception propagates unchanged,
    because it is a bug whose traceback the user should report."""
    try:
        return function(*args, **kwargs)
    except errors.UserError as error:
        sys.stdout.flush()
        sys.stderr.write(f"error: {errors.one_line(error)}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_USER_ERROR) from None


def config_overrides(flag_values, flag_name="config"):
    """The `--config.x=y` overrides given on the command line.

    ml_collections' config flags parse each override against the config's
    field type; this returns those parsed values so that they can be applied
    to other configs of the same task too (table2 applies them to every
    cell).

    Returns:
      {dotted field name: value} for every override flag that was passed.
    """
    prefix = flag_name + "."
    return {
        name[len(prefix) :]: flag_values[name].value
        for name in flag_values
        if name.startswith(prefix) and flag_values[name].present
    }


def apply_overrides(config, overrides):
    """Sets each `{dotted field: value}` of `config_overrides` on `config`.

    Raises:
      UsageError: naming a field the config does not have.
    """
    for field, value in overrides.items():
        *path, leaf = field.split(".")
        node = config
        try:
            for part in path:
                node = node[part]
            node[leaf]  # noqa: B018 - only checks that the field exists.
        except (KeyError, AttributeError):
            raise errors.UsageError(
                f"--config.{field}: this config has no field {field!r}."
            ) from None
        node[leaf] = value
    return config
