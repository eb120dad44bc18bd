"""The contract test's independent reading of RestAPI.xsd: what JSON an XML answer calls for."""

from __future__ import annotations

from lxml import etree

from tests.contract.em_json_check import declared, differences, expected_json, plural

NS = 'xmlns="http://www.veeam.com/ent/v1.0"'
ONE_REF = f"""<EntityReferences {NS}>
  <Ref UID="urn:veeam:Repository:1" Name="r" Href="https://h/api/repositories/1"
       Type="RepositoryReference">
    <Links><Link Rel="Alternate" Href="https://h/api/repositories/1?format=Entity"/></Links>
  </Ref>
</EntityReferences>"""
REPOSITORIES = f"""<Repositories {NS}>
  <Repository Href="https://h/api/repositories/1?format=Entity" Type="Repository" Name="r"
              UID="urn:veeam:Repository:1">
    <Capacity>270553174016</Capacity><FreeSpace>83875008512</FreeSpace>
  </Repository>
</Repositories>"""


def test_a_repeating_element_is_an_array_even_for_one_item() -> None:
    assert expected_json(etree.fromstring(ONE_REF)) == {
        "Refs": [
            {
                "UID": "urn:veeam:Repository:1",
                "Name": "r",
                "Href": "https://h/api/repositories/1",
                "Type": "RepositoryReference",
                # LinkListType is nothing but repeating Links: the array itself
                "Links": [
                    {"Rel": "Alternate", "Href": "https://h/api/repositories/1?format=Entity"}
                ],
            }
        ]
    }


def test_xsd_long_is_a_number_and_the_list_is_named_by_its_plural() -> None:
    document = etree.fromstring(REPOSITORIES)
    assert declared(document)
    [repository] = expected_json(document)["Repositories"]
    assert (repository["Capacity"], repository["FreeSpace"]) == (270553174016, 83875008512)


def test_what_the_old_converter_sent_is_caught() -> None:
    expected = expected_json(etree.fromstring(REPOSITORIES))
    last_item_only = {"Repository": dict(expected["Repositories"][0], Capacity="270553174016")}
    found = list(differences(expected, last_item_only))
    assert "(root): property 'Repositories' missing" in found
    assert "(root): unexpected property 'Repository'" in found
    as_strings = {"Repositories": [dict(expected["Repositories"][0], Capacity="270553174016")]}
    assert list(differences(expected, as_strings)) == [
        "Repositories[0].Capacity: expected number 270553174016, got string '270553174016'"
    ]
    assert list(differences(expected, {"Repositories": []})) == [
        "Repositories: 0 items, the XML has 1"
    ]


def test_free_space_is_compared_by_type_only() -> None:
    expected = expected_json(etree.fromstring(REPOSITORIES))
    later = {"Repositories": [dict(expected["Repositories"][0], FreeSpace=83875000000)]}
    assert list(differences(expected, later)) == []


def test_plurals() -> None:
    assert [plural(n) for n in ("Ref", "Repository", "Day", "Days", "Box")] == [
        "Refs",
        "Repositories",
        "Days",
        "Days",
        "Boxes",
    ]
