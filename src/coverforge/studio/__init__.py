"""coverforge studio: a local web app over the library, for the people who choose covers."""
