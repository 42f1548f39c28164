"""The control-plane store: tables, engine, unit of work, repositories, migrations runner."""
